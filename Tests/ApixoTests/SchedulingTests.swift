import XCTest
@testable import Apixo

/// A clock the test moves by hand.
final class FakeClock: Clock {
    var now: Double = 1000
    func advance(_ s: Double) { now += s }
}

final class RateLimiterTests: XCTestCase {
    func testSlidingWindowAdmitsCapacityThenWaitsForTheOldest() {
        let clock = FakeClock()
        let l = RateLimiter(capacity: 3, window: 10)
        for _ in 0..<3 {
            XCTAssertEqual(l.nextAvailable(clock.now), clock.now)
            l.record(clock.now)
            clock.advance(1)
        }
        // Sent at 1000, 1001, 1002: the fourth may go when the first leaves the window.
        XCTAssertEqual(l.nextAvailable(clock.now), 1010, accuracy: 1e-9)
        clock.now = 1010
        XCTAssertEqual(l.inWindow(clock.now), 2)
        XCTAssertEqual(l.nextAvailable(clock.now), 1010)
    }

    func testZeroCapacityIsUnlimitedButPausesStillHold() {
        let l = RateLimiter(capacity: 0, window: 60)
        for i in 0..<1000 { l.record(Double(i) * 0.001) }
        XCTAssertEqual(l.nextAvailable(1), 1)
        l.pause(until: 5)
        XCTAssertEqual(l.nextAvailable(1), 5)
        l.pause(until: 3)  // a shorter pause never shortens a longer one
        XCTAssertEqual(l.nextAvailable(1), 5)
    }

    func testNeverMoreThanCapacityInAnyWindow() {
        // Greedy senders through the limiter: check every window of the resulting timeline.
        let l = RateLimiter(capacity: 60, window: 60)
        var t = 0.0
        var sent: [Double] = []
        while sent.count < 500 {
            t = l.nextAvailable(t)
            l.record(t)
            sent.append(t)
            t += Double.random(in: 0..<0.3)
        }
        var j = 0
        for i in sent.indices {
            while sent[i] - sent[j] >= 60 - 1e-9 { j += 1 }  // exactly one window apart is outside it
            XCTAssertLessThanOrEqual(i - j + 1, 60)
        }
    }
}

final class PollPlannerTests: XCTestCase {
    func testDefaultsComeFromTheDocumentedRangesScaled() {
        let p = PollPlanner(scale: 0.01)
        let e2 = p.estimate(model: "seedream-5-0", resolution: "2K")
        let e3 = p.estimate(model: "seedream-5-0", resolution: "3K")
        XCTAssertEqual(e2.mean, 0.31, accuracy: 1e-9)   // (25+35)/2 + 1 s queue, x0.01
        XCTAssertGreaterThan(e3.mean, e2.mean)
        // First poll a little after the expected completion, never before the minimum gap.
        let d = p.firstPollDelay(model: "seedream-5-0", resolution: "2K", elapsed: 0, callbackMode: false)
        XCTAssertGreaterThan(d, e2.mean)
        XCTAssertLessThan(d, 0.35 + 0.01)
        XCTAssertEqual(p.firstPollDelay(model: "seedream-5-0", resolution: "2K", elapsed: 100, callbackMode: false),
                       p.minimumGap)
        // Webhook tasks poll only as a late fallback.
        XCTAssertGreaterThan(p.firstPollDelay(model: "seedream-5-0", resolution: "2K", elapsed: 0, callbackMode: true), 2 * d)
    }

    func testLearnsObservedLatency() {
        let p = PollPlanner(scale: 1)
        for _ in 0..<20 { p.observe(model: "seedream-5-0", resolution: "2K", latency: 12) }
        let e = p.estimate(model: "seedream-5-0", resolution: "2K")
        XCTAssertEqual(e.mean, 12, accuracy: 0.5)
        XCTAssertLessThan(e.deviation, 1)
        XCTAssertEqual(e.samples, 20)
        // Other keys keep their defaults.
        XCTAssertEqual(p.estimate(model: "seedream-5-0", resolution: "3K").samples, 0)
        // Garbage observations are ignored.
        p.observe(model: "x", resolution: "2K", latency: -1)
        p.observe(model: "x", resolution: "2K", latency: .nan)
        XCTAssertEqual(p.estimate(model: "x", resolution: "2K").samples, 0)
    }

    func testPollSpacingFitsTheBudget() {
        let p = PollPlanner(scale: 1)
        // One overdue task: its share of 80% of the budget, 60 s / 48.
        XCTAssertEqual(p.nextPollDelay(overdueTasks: 1, requestsPerWindow: 60, window: 60, callbackMode: false), 1.25,
                       accuracy: 1e-9)
        // Ten overdue tasks share 80% of 60 requests a minute: 12.5 s apart each.
        XCTAssertEqual(p.nextPollDelay(overdueTasks: 10, requestsPerWindow: 60, window: 60, callbackMode: false), 12.5,
                       accuracy: 1e-9)
        // No limit: the minimum gap.
        XCTAssertEqual(p.nextPollDelay(overdueTasks: 10, requestsPerWindow: 0, window: 60, callbackMode: false), 1)
    }

    func testBackoffGrowsWithJitterAndIsCapped() {
        let p = PollPlanner(scale: 1)
        XCTAssertEqual(p.backoff(attempt: 0, random: 1), 1, accuracy: 1e-9)
        XCTAssertEqual(p.backoff(attempt: 0, random: 0), 0.5, accuracy: 1e-9)
        XCTAssertEqual(p.backoff(attempt: 3, random: 1), 8, accuracy: 1e-9)
        XCTAssertEqual(p.backoff(attempt: 30, random: 1), 30, accuracy: 1e-9)
    }

    /// A discrete-event run of the scheduling policy on a fake timeline: 30 tasks, 10 slots,
    /// 60 requests a minute, generation times drawn from the documented 2K range. The policy
    /// must never exceed the window and should need few polls per task.
    func testPolicyOnAFakeTimelineStaysInBudgetWithFewPolls() {
        var rng = SplitMix(seed: 7)
        let window = 60.0 * 1.05 + 0.02
        let limiter = RateLimiter(capacity: 60, window: window)
        let planner = PollPlanner(scale: 1)
        var now = 0.0
        var queue = Array(0..<30)
        var running: [(id: Int, start: Double, done: Double, nextPoll: Double, polls: Int, overdue: Bool)] = []
        var sends: [Double] = []
        var finished = 0
        var totalPolls = 0
        var overdueCount = 0
        while finished < 30 {
            // The next event: a submit when a slot is free, else the earliest poll.
            let ready = limiter.nextAvailable(now)
            if !queue.isEmpty && running.count < 10 {
                now = ready
                limiter.record(now)
                sends.append(now)
                let id = queue.removeFirst()
                let gen = 25 + 10 * rng.next() + 1
                let first = now + planner.firstPollDelay(model: "seedream-5-0", resolution: "2K", elapsed: 0, callbackMode: false)
                running.append((id, now, now + gen, first, 0, false))
                continue
            }
            guard let i = running.indices.min(by: { running[$0].nextPoll < running[$1].nextPoll }) else { break }
            now = max(ready, running[i].nextPoll)
            limiter.record(now)
            sends.append(now)
            running[i].polls += 1
            totalPolls += 1
            if now >= running[i].done {
                planner.observe(model: "seedream-5-0", resolution: "2K", latency: running[i].done - running[i].start)
                if running[i].overdue { overdueCount -= 1 }
                running.remove(at: i)
                finished += 1
            } else {
                if !running[i].overdue {
                    running[i].overdue = true
                    overdueCount += 1
                }
                running[i].nextPoll = now + planner.nextPollDelay(overdueTasks: overdueCount, requestsPerWindow: 60,
                                                                   window: window, callbackMode: false)
            }
        }
        XCTAssertEqual(finished, 30)
        var j = 0
        for k in sends.indices {
            while sends[k] - sends[j] >= 60 { j += 1 }
            XCTAssertLessThanOrEqual(k - j + 1, 60, "more than 60 requests in a 60 s window")
        }
        let pollsPerTask = Double(totalPolls) / 30
        XCTAssertLessThan(pollsPerTask, 3.0, "polls per task: \(pollsPerTask)")
    }
}

/// A small deterministic generator for repeatable fake timelines.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }
}
