import XCTest
@testable import Apixo

final class LearnedPollPolicyTests: XCTestCase {
    let key = "seedream-5-0|2K"
    /// The account's limits on the client's window, ten tasks tracked, more waiting.
    func load(tracked: Int = 10, queued: Int = 5, scale: Double = 1) -> PollLoad {
        PollLoad(trackedTasks: tracked, queuedSubmits: queued, requestsPerWindow: 60, window: 63.02 * scale)
    }

    func ctx(_ key: String, elapsed: Double, polls: Int = 0, load: PollLoad, callback: Bool = false) -> PollContext {
        PollContext(key: key, elapsed: elapsed, polls: polls, callbackMode: callback, load: load)
    }

    /// Fixed, spread-out draws from lo...hi (no randomness in tests).
    func spread(_ n: Int, _ lo: Double, _ hi: Double) -> [Double] {
        (0..<n).map { lo + (hi - lo) * Double(($0 * 7) % n) / Double(max(1, n - 1)) }
    }

    func testPriorIsTheDocumentedRangeScaled() {
        let p1 = LearnedPollPolicy(scale: 1), p2 = LearnedPollPolicy(scale: 0.01)
        let d1 = p1.nextPollDelay(ctx(key, elapsed: 0, load: load()))
        let d2 = p2.nextPollDelay(ctx(key, elapsed: 0, load: load(scale: 0.01)))
        // The first poll falls inside the documented 25-35 s plus the queue wait.
        XCTAssert(d1 > 25 && d1 < 37, "\(d1)")
        XCTAssertEqual(d2, d1 * 0.01, accuracy: 0.011)
        XCTAssertEqual(p1.expectedDuration(key: key), (25.5 + 37) / 2, accuracy: 0.5)
        // A 3K task waits longer before its first look.
        let d3 = p1.nextPollDelay(ctx("seedream-5-0|3K", elapsed: 0, load: load()))
        XCTAssert(d3 > 35, "\(d3)")
    }

    func testLearnsPerKey() {
        let p = LearnedPollPolicy(scale: 1)
        let before = p.nextPollDelay(ctx(key, elapsed: 0, load: load()))
        for d in spread(30, 48, 52) { p.observe(key: key, duration: d) }
        let after = p.nextPollDelay(ctx(key, elapsed: 0, load: load()))
        XCTAssert(after > 44 && after < 53, "first poll \(after), was \(before)")
        XCTAssertEqual(p.expectedDuration(key: key), 50, accuracy: 1)
        // Another key keeps its prior.
        XCTAssertEqual(p.nextPollDelay(ctx("seedream-4-5|2K", elapsed: 0, load: load())), before, accuracy: 1e-9)
        // Only the last `window` observations count.
        for d in spread(30, 29, 31) { p.observe(key: key, duration: d) }
        XCTAssertEqual(p.model(key).samples.count, 30)
        XCTAssertEqual(p.expectedDuration(key: key), 30, accuracy: 1)
    }

    func testIgnoresImpossibleDurations() {
        let p = LearnedPollPolicy(scale: 0.01)
        for d in [-1, 0, .nan, .infinity, -.infinity, 37 * 0.01 * 21] { p.observe(key: key, duration: d) }
        XCTAssertEqual(p.model(key).samples.count, 0)
        XCTAssertEqual(p.model(key).seen, 0)
        p.observe(key: key, duration: 0.3)
        XCTAssertEqual(p.model(key).samples, [0.3])
    }

    func testResetsOnDriftOnly() {
        let p = LearnedPollPolicy(scale: 1)
        for d in spread(20, 26, 36) { p.observe(key: key, duration: d) }
        // Three slow ones are not yet a drift; the fourth in a row is.
        for d in [60.0, 62, 58] { p.observe(key: key, duration: d) }
        XCTAssertEqual(p.model(key).resets, 0)
        XCTAssertEqual(p.model(key).samples.count, 23)
        p.observe(key: key, duration: 61)
        XCTAssertEqual(p.model(key).resets, 1)
        XCTAssertEqual(p.model(key).samples, [60, 62, 58, 61])
        XCTAssertEqual(p.expectedDuration(key: key), 60.25, accuracy: 1.5)
        XCTAssert(p.nextPollDelay(ctx(key, elapsed: 0, load: load())) > 50)
        // A faster run afterwards resets it back down.
        for d in [30.0, 31, 29, 30] { p.observe(key: key, duration: d) }
        XCTAssertEqual(p.model(key).resets, 1, "8 observations: too few to judge")
        for d in spread(8, 29, 31) { p.observe(key: key, duration: d) }
        for d in [20.0, 21, 20.5, 21.5] { p.observe(key: key, duration: d) }
        XCTAssertEqual(p.model(key).resets, 2)
    }

    func testMixedObservationsAreNotADrift() {
        let p = LearnedPollPolicy(scale: 1)
        // Two populations interleaved: no run of four outside the rest.
        for i in 0..<60 { p.observe(key: key, duration: i % 2 == 0 ? 27 + Double(i % 7) : 38 + Double(i % 11)) }
        XCTAssertEqual(p.model(key).resets, 0)
    }

    /// The planned poll by which 99% of the tasks are seen.
    func coverage(_ p: LearnedPollPolicy, _ key: String) -> Double {
        let polls = p.plannedPolls(key: key, load: load(), limit: 40)
        let g = p.model(key).distribution.grid
        return polls.first { g.cdf($0) >= 0.99 } ?? .infinity
    }

    func testPollsLaterForALongTail() {
        let tight = LearnedPollPolicy(scale: 1), tail = LearnedPollPolicy(scale: 1)
        for d in spread(30, 28, 32) { tight.observe(key: key, duration: d) }
        // The same median, a lognormal-like tail of sigma 0.35 (fixed quantiles).
        let z: [Double] = [-1.83, -1.38, -1.1, -0.9, -0.73, -0.58, -0.45, -0.33, -0.22, -0.11,
                           0, 0.11, 0.22, 0.33, 0.45, 0.58, 0.73, 0.9, 1.1, 1.38, 1.83]
        for q in z { tail.observe(key: key, duration: 30 * exp(0.35 * q)) }
        XCTAssert(coverage(tail, key) > coverage(tight, key) + 10,
                  "tail \(coverage(tail, key)) tight \(coverage(tight, key))")
        // And once a task has run past the bulk, the next look is further off.
        let late = 45.0
        XCTAssert(tail.nextPollDelay(ctx(key, elapsed: late, polls: 2, load: load()))
                  > tight.nextPollDelay(ctx(key, elapsed: 32, polls: 2, load: load())) - 1e-9)
    }

    func testScheduleIsMonotoneAndSpaced() {
        let p = LearnedPollPolicy(scale: 0.01)
        for d in spread(30, 0.26, 0.36) { p.observe(key: key, duration: d) }
        for tracked in [1, 5, 10, 40] {
            for queued in [0, 3] {
                let polls = p.plannedPolls(key: key, load: load(tracked: tracked, queued: queued, scale: 0.01), limit: 30)
                var prev = 0.0
                let lateAfter = p.model(key).distribution.lateAfter
                for (i, t) in polls.enumerated() {
                    XCTAssert(t >= prev + p.parameters.minimumGap * 0.01 - 1e-12, "\(polls)")
                    // At most the largest gap apart, or past everything seen a share of the lateness.
                    let most = max(p.parameters.maximumGap * 0.01, p.parameters.lateShare * (prev - lateAfter))
                    if i > 0 { XCTAssert(t - prev <= most + 1e-9, "\(polls)") }
                    prev = t
                }
            }
        }
    }

    /// Issue #14: a task later than everything seen is polled less the later it is (a fifth
    /// of its lateness apart, at most five minutes), whatever budget is free.
    func testALateTaskIsPolledLessTheLaterItIs() {
        let p = LearnedPollPolicy(scale: 1)
        for d in spread(30, 26, 36) { p.observe(key: key, duration: d) }
        let lateAfter = p.model(key).distribution.lateAfter
        XCTAssertEqual(lateAfter, 36, accuracy: 3)
        let idle = load(tracked: 1, queued: 0)
        var prevGap = 0.0
        for late in [10.0, 60, 300, 1200, 5000] {
            let gap = p.nextPollDelay(ctx(key, elapsed: lateAfter + late, polls: 5, load: idle))
            XCTAssertGreaterThanOrEqual(gap, min(0.2 * late, 300) - 1e-9, "\(late) s late")
            XCTAssertGreaterThanOrEqual(gap, prevGap, "gaps grow with lateness")
            XCTAssertLessThanOrEqual(gap, max(0.2 * late, p.parameters.maximumGap) + 1e-9)
            prevGap = gap
        }
        XCTAssertEqual(p.nextPollDelay(ctx(key, elapsed: lateAfter + 5000, polls: 9, load: idle)), 300, accuracy: 1e-9)
        // Within what has been seen the rule does not apply.
        XCTAssertEqual(p.lateGap(p.model(key), elapsed: 30), 0)
    }

    func testPriceRisesWithLoadAndFallsWhenNothingWaits() {
        let p = LearnedPollPolicy(scale: 1)
        for d in spread(30, 26, 36) { p.observe(key: key, duration: d) }
        let m = p.model(key)
        let levels = [1, 2, 5, 10, 20, 40].map { p.price(m, load: load(tracked: $0)) }
        XCTAssertEqual(levels, levels.sorted(), "\(levels)")
        XCTAssert(levels.last! > levels.first!, "\(levels)")
        XCTAssert(p.price(m, load: load(tracked: 10, queued: 0)) < p.price(m, load: load(tracked: 10, queued: 5)))
        // Nothing waits to be submitted: never below the floor however free the budget, the
        // floor shared among the tracked tasks. Submits wait: the budget alone sets the price.
        let floor = LearnedPollPolicy.level(forPrice: p.parameters.minimumPrice)
        XCTAssert(floor > 0 && p.priceSeconds(floor) >= p.parameters.minimumPrice && p.priceSeconds(floor - 1) < p.parameters.minimumPrice)
        XCTAssertEqual(p.price(m, load: PollLoad(trackedTasks: 1, queuedSubmits: 0, requestsPerWindow: 0, window: 63)), floor)
        XCTAssertEqual(p.price(m, load: load(tracked: 1, queued: 0)), floor)
        XCTAssertEqual(p.price(m, load: PollLoad(trackedTasks: 5, queuedSubmits: 0, requestsPerWindow: 0, window: 63)),
                       LearnedPollPolicy.level(forPrice: p.parameters.minimumPrice / 5))
        XCTAssertEqual(p.price(m, load: PollLoad(trackedTasks: 50, queuedSubmits: 9, requestsPerWindow: 0, window: 63)), 0)
        // The expected request rate at the chosen price fits 95% of the budget.
        let s = m.table(priceLevel: levels[3]).summary
        XCTAssertLessThanOrEqual(10 * (s.polls + 1) / s.lifetime, 0.95 * 60 / 63.02 + 1e-9)
        // Fewer polls per task at a higher price.
        XCTAssert(m.table(priceLevel: 40).summary.polls < m.table(priceLevel: 5).summary.polls)
    }

    func testDPPollsRightAfterACertainCompletion() {
        let g = DistributionGrid.empirical([30, 30, 30], step: 0.25)
        let t = PollTable(g, price: 0.5, minGap: 1, maxGap: 60)
        XCTAssertEqual(t.nextPoll(after: 0), 30, accuracy: 1e-9)
        XCTAssertEqual(t.summary.polls, 1, accuracy: 1e-9)
        XCTAssertEqual(t.summary.lifetime, 30, accuracy: 1e-9)
        // Two equally likely completions: a poll at each is worth it when polls are cheap,
        // one poll at the later one when they are dear.
        let two = DistributionGrid.empirical([20, 40], step: 0.25)
        XCTAssertEqual(PollTable(two, price: 1, minGap: 1, maxGap: 60).nextPoll(after: 0), 20, accuracy: 1e-9)
        XCTAssertEqual(PollTable(two, price: 100, minGap: 1, maxGap: 60).nextPoll(after: 0), 40, accuracy: 1e-9)
    }

    func testWebhookPollsAreALateFallback() {
        let p = LearnedPollPolicy(scale: 1)
        for d in spread(30, 26, 36) { p.observe(key: key, duration: d) }
        let first = p.nextPollDelay(ctx(key, elapsed: 0, load: load(), callback: true))
        XCTAssert(first > 36 + 30, "\(first)")
        let later = p.nextPollDelay(ctx(key, elapsed: first, polls: 1, load: load(), callback: true))
        XCTAssert(later >= 10, "\(later)")
    }

    func testAssumedRemainingShrinksAndStaysPositiveEarly() {
        let p = LearnedPollPolicy(scale: 1)
        for d in spread(30, 26, 36) { p.observe(key: key, duration: d) }
        let r0 = p.assumedRemaining(key: key, elapsed: 0)
        XCTAssert(r0 >= 36, "\(r0)")
        XCTAssert(p.assumedRemaining(key: key, elapsed: 20) < r0)
        XCTAssert(p.assumedRemaining(key: key, elapsed: 1e6) >= 0)
    }

    func testDeterministic() {
        func run() -> [Double] {
            let p = LearnedPollPolicy(scale: 1)
            var out: [Double] = []
            for (i, d) in spread(40, 25, 45).enumerated() {
                p.observe(key: key, duration: d)
                out.append(p.nextPollDelay(ctx(key, elapsed: Double(i), polls: i % 3, load: load(tracked: 1 + i % 10))))
            }
            return out
        }
        XCTAssertEqual(run(), run())
    }
}
