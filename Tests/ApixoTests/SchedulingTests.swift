import XCTest
@testable import Apixo

/// A clock the test moves by hand.
/// Driven by one test thread at a time, so the unchecked Sendable holds.
final class FakeClock: Clock, @unchecked Sendable {
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

    func testAReserveLeavesTheWindowsLastRequestsUnspent() {
        let l = RateLimiter(capacity: 3, window: 10)
        l.record(1000)
        l.record(1001)
        XCTAssertEqual(l.nextAvailable(1002), 1002)
        XCTAssertEqual(l.nextAvailable(1002, reserve: 1), 1010, accuracy: 1e-9, "the third is reserved: wait for the first to leave")
        XCTAssertEqual(l.nextAvailable(1002, reserve: 2), 1011, accuracy: 1e-9)
        // A reserve never takes the whole window, nor goes negative.
        XCTAssertEqual(l.nextAvailable(1002, reserve: 99), l.nextAvailable(1002, reserve: 2))
        XCTAssertEqual(l.nextAvailable(1002, reserve: -5), 1002)
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

    func testImplausibleLatencyIsIgnored() {
        let p = PollPlanner(scale: 0.01)
        // 20 x the documented 35 s, time-scaled: 7 s. INT64_MAX ms, microseconds as ms, days: ignored.
        XCTAssertEqual(p.plausibleLatency(model: "seedream-5-0", resolution: "2K"), 7, accuracy: 1e-9)
        for absurd in [9.2e15, 1.7e9, 1e6, 7.01, .infinity, 0] {
            p.observe(model: "seedream-5-0", resolution: "2K", latency: absurd)
        }
        XCTAssertEqual(p.estimate(model: "seedream-5-0", resolution: "2K").samples, 0)
        XCTAssertLessThan(p.firstPollDelay(model: "seedream-5-0", resolution: "2K", elapsed: 0, callbackMode: false), 0.4)
        p.observe(model: "seedream-5-0", resolution: "2K", latency: 6.9)
        XCTAssertEqual(p.estimate(model: "seedream-5-0", resolution: "2K").samples, 1)
        // A model without documented times gets at least two hours (scaled).
        XCTAssertEqual(p.plausibleLatency(model: "flux-2", resolution: "2K"), 72, accuracy: 1e-9)
    }

    func testPollSpacingFitsTheBudget() {
        let p = PollPlanner(scale: 1)
        let key = pollKey(model: "seedream-5-0", resolution: "2K")
        let target = p.firstPollTarget(key: key, callbackMode: false)
        func gap(overdue: Int, rpm: Int, late: Double = 0) -> Double {
            p.nextPollDelay(PollContext(key: key, elapsed: target + late, polls: 1, callbackMode: false,
                                        load: PollLoad(trackedTasks: overdue, queuedSubmits: 0, requestsPerWindow: rpm,
                                                       window: 60, overdueTasks: overdue)))
        }
        // One overdue task: its share of 80% of the budget, 60 s / 48.
        XCTAssertEqual(gap(overdue: 1, rpm: 60), 1.25, accuracy: 1e-9)
        // Ten overdue tasks share 80% of 60 requests a minute: 12.5 s apart each.
        XCTAssertEqual(gap(overdue: 10, rpm: 60), 12.5, accuracy: 1e-9)
        // No limit: the minimum gap.
        XCTAssertEqual(gap(overdue: 10, rpm: 0), 1)
        // A task far past its expected end is polled less often: a fifth of its overrun, at most 5 min.
        XCTAssertEqual(gap(overdue: 1, rpm: 60, late: 100), 20, accuracy: 1e-9)
        XCTAssertEqual(gap(overdue: 1, rpm: 60, late: 100_000), 300, accuracy: 1e-9)
        // Before its expected end, a task waits for it whatever its poll count.
        let early = p.nextPollDelay(PollContext(key: key, elapsed: 5, polls: 1, callbackMode: false,
                                                load: PollLoad(trackedTasks: 1, queuedSubmits: 0, requestsPerWindow: 60, window: 60)))
        XCTAssertEqual(early, target - 5, accuracy: 1e-9)
    }

    func testBackoffGrowsWithJitterAndIsCapped() {
        let b = Backoff(scale: 1)
        XCTAssertEqual(b.delay(attempt: 0, random: 1), 1, accuracy: 1e-9)
        XCTAssertEqual(b.delay(attempt: 0, random: 0), 0.5, accuracy: 1e-9)
        XCTAssertEqual(b.delay(attempt: 3, random: 1), 8, accuracy: 1e-9)
        XCTAssertEqual(b.delay(attempt: 30, random: 1), 30, accuracy: 1e-9)
        // The server's Retry-After wins when longer, never when shorter.
        XCTAssertEqual(b.retryDelay(retryAfter: 12, attempt: 0, random: 1), 12, accuracy: 1e-9)
        XCTAssertEqual(b.retryDelay(retryAfter: 0.1, attempt: 0, random: 1), 1, accuracy: 1e-9)
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
