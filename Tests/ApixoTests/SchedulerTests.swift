import XCTest
@testable import Apixo

/// The scheduling core driven directly under a fake clock: no threads, no network.
final class SchedulerTests: XCTestCase {
    typealias Core = Scheduler<QueuedSubmit, ScheduledTask>
    static let key = pollKey(model: "seedream-5-0", resolution: "2K")

    /// A scheduler on a fake clock, and a record of what it sent.
    final class Rig {
        let clock = FakeClock()
        let budget: LocalBudget
        let policy = PollPlanner(scale: 1)
        let core: Core
        var sends: [Double] = []
        var now: Double { clock.now }

        /// `pollPolicy`: another policy than `policy` (the EWMA planner) for the core.
        init(rpm: Int = 60, slots: Int = 10, retries: Int = 3, pollPolicy: PollPolicy? = nil) {
            budget = LocalBudget(requestsPerWindow: rpm, window: 60, maxSlots: slots)
            core = Core(budget: budget, policy: pollPolicy ?? policy, maxRetries: retries, scale: 1, random: { 0.5 })
        }

        /// Every step the core takes at the current time, up to its `.wait`.
        func steps() -> (taken: [Core.Step], wake: Double?) {
            var taken: [Core.Step] = []
            while true {
                let s = core.next(now: now)
                if case .wait(let at) = s { return (taken, at) }
                if case .forget = s {} else { sends.append(now) }
                taken.append(s)
            }
        }

        func submit(_ n: Int) -> [QueuedSubmit] {
            (0..<n).map { _ in
                let s = QueuedSubmit(key: SchedulerTests.key)
                core.enqueue(s)
                return s
            }
        }
    }

    func submitted(_ steps: [Core.Step]) -> [QueuedSubmit] {
        steps.compactMap { if case .submit(let s) = $0 { return s } else { return nil } }
    }

    func polled(_ steps: [Core.Step]) -> [ScheduledTask] {
        steps.compactMap { if case .poll(let t) = $0 { return t } else { return nil } }
    }

    func task(_ id: String, origin: TaskOrigin = .submitted) -> ScheduledTask {
        ScheduledTask(id: id, key: SchedulerTests.key, callbackMode: false, origin: origin)
    }

    func testSubmitsGoInOrderAndWaitForASlot() {
        let r = Rig(rpm: 0, slots: 2)
        let s = r.submit(3)
        let (first, wake) = r.steps()
        XCTAssertTrue(submitted(first).elementsEqual(s.prefix(2), by: ===), "the first two, in order")
        XCTAssertNil(wake, "nothing to do until a slot frees")
        XCTAssertEqual(r.budget.slotsHeld, 2)
        XCTAssertEqual(r.core.queuedSubmits, 1)
        // The first is accepted and waited for: its slot moves to the task; no slot frees.
        let t = task("t1")
        r.core.submitAccepted(s[0], as: t, listening: true, now: r.now)
        XCTAssertTrue(t.holdsSlot)
        XCTAssertEqual(r.budget.slotsHeld, 2)
        XCTAssertTrue(submitted(r.steps().taken).isEmpty)
        // Seen terminal: the third submit takes its slot at once.
        r.core.finish(t, terminal: true, now: r.now)
        XCTAssertTrue(submitted(r.steps().taken).elementsEqual([s[2]], by: ===))
        XCTAssertEqual(r.budget.slotsHeld, 2)
        XCTAssertEqual(r.core.queuedSubmits, 0)
        // A submit taken out of the queue before it was sent is never sent.
        let late = r.submit(1)[0]
        XCTAssertTrue(r.core.cancelQueued(late))
        XCTAssertFalse(r.core.cancelQueued(late))
        r.core.submitAborted(s[1], now: r.now)
        XCTAssertTrue(submitted(r.steps().taken).isEmpty)
        XCTAssertEqual(r.budget.slotsHeld, 1)
    }

    func testRequestsStayInsideTheWindow() {
        let r = Rig(rpm: 3, slots: 0)
        _ = r.submit(5)
        XCTAssertEqual(submitted(r.steps().taken).count, 3)
        let (_, wake) = r.steps()
        XCTAssertEqual(wake, 1060, "the fourth waits for the first to leave the window")
        r.clock.now = 1060
        XCTAssertEqual(submitted(r.steps().taken).count, 2)
        XCTAssertEqual(r.budget.requestsInWindow(now: r.now), 2)
    }

    /// Runs the core until `end`, answering every poll "still running" (with the server age
    /// `serverAge` gives for the time of the answer); the polls sent, or nil when the core
    /// stops scheduling.
    func pollRunning(_ r: Rig, until end: Double, serverAge: (Double) -> Double? = { _ in nil }) -> Int? {
        var polls = 0
        while r.now < end {
            let (taken, wake) = r.steps()
            for p in polled(taken) {
                polls += 1
                r.core.running(p, serverAge: serverAge(r.now), isPoll: true, now: r.now)
            }
            if taken.isEmpty {
                guard let w = wake else { return nil }
                r.clock.now = min(max(w, r.now + 1e-6), end)
            }
        }
        return polls
    }

    /// Queues `n` submits; the first goes and is accepted as a task that is waited for.
    func startOne(_ r: Rig, submits n: Int) -> ([QueuedSubmit], ScheduledTask) {
        let s = r.submit(n)
        XCTAssertEqual(submitted(r.steps().taken).count, 1)
        let t = task("t1")
        r.core.submitAccepted(s[0], as: t, listening: true, now: r.now)
        return (s, t)
    }

    /// While a submit waits, polls leave the window's last request to it: the completion a
    /// poll sees in a full minute is followed by its submit at once, not a window later.
    func testPollsLeaveARequestOfTheWindowToAWaitingSubmit() {
        let r = Rig(rpm: 3, slots: 1)
        let (s, t) = startOne(r, submits: 2)
        // Poll the running task until just before the submit's request leaves the window.
        guard let polls = pollRunning(r, until: 1058) else { return XCTFail("the task must stay scheduled") }
        XCTAssertEqual(polls, 1, "one request of three is the submit's, one is kept for the next submit")
        XCTAssertEqual(r.budget.requestsInWindow(now: r.now), 2)
        // The poll that would have taken the last request waits; the completion is seen
        // (by a webhook, say) and the waiting submit goes at once.
        r.core.finish(t, terminal: true, now: r.now)
        XCTAssertTrue(submitted(r.steps().taken).elementsEqual([s[1]], by: ===))
        XCTAssertEqual(r.budget.requestsInWindow(now: r.now), 3)
    }

    /// With nothing waiting to be submitted, polls may use the whole window.
    func testWithNothingQueuedPollsUseTheWholeWindow() {
        let r = Rig(rpm: 3, slots: 1)
        _ = startOne(r, submits: 1)
        guard let polls = pollRunning(r, until: 1058) else { return XCTFail("the task must stay scheduled") }
        XCTAssertEqual(polls, 2)
        XCTAssertEqual(r.budget.requestsInWindow(now: r.now), 3)
    }

    func testARefusedSubmitIsRetriedFirstAfterBackoffThenGivenUp() {
        let r = Rig(rpm: 0, slots: 1, retries: 2)
        let s = r.submit(2)
        XCTAssertTrue(submitted(r.steps().taken).elementsEqual([s[0]], by: ===))
        var e = ApixoError(.server, "HTTP 503")
        e.httpStatus = 503
        // attempt 1 refused: backoff 1 s x (0.5 + 0.5 x 0.5) = 0.75 s; the slot is free meanwhile.
        XCTAssertEqual(r.core.submitRefused(s[0], e, safe: true, now: r.now) ?? -1, 0.75, accuracy: 1e-9)
        XCTAssertEqual(r.budget.slotsHeld, 0)
        let (none, wake) = r.steps()
        XCTAssertTrue(none.isEmpty, "the retry keeps its place at the head: the second waits behind it")
        XCTAssertEqual(wake ?? 0, r.now + 0.75, accuracy: 1e-9)
        r.clock.advance(0.75)
        XCTAssertTrue(submitted(r.steps().taken).elementsEqual([s[0]], by: ===))
        XCTAssertEqual(s[0].attempts, 2)
        // attempt 2 refused: 1.5 s; attempt 3 refused: out of retries.
        XCTAssertEqual(r.core.submitRefused(s[0], e, safe: true, now: r.now) ?? -1, 1.5, accuracy: 1e-9)
        r.clock.advance(1.5)
        XCTAssertTrue(submitted(r.steps().taken).elementsEqual([s[0]], by: ===))
        XCTAssertNil(r.core.submitRefused(s[0], e, safe: true, now: r.now))
        // An unsafe refusal (it may have been taken) is never retried.
        XCTAssertTrue(submitted(r.steps().taken).elementsEqual([s[1]], by: ===))
        XCTAssertNil(r.core.submitRefused(s[1], ApixoError(.server, "HTTP 500"), safe: false, now: r.now))
        XCTAssertEqual(r.budget.slotsHeld, 0)
    }

    func testA429PausesEveryRequestForItsRetryAfter() {
        let r = Rig(rpm: 0, slots: 0)
        let s = r.submit(1)[0]
        _ = r.steps()
        var e = ApixoError(.rateLimited, "HTTP 429")
        e.httpStatus = 429
        e.retryAfter = 5
        XCTAssertEqual(r.core.submitRefused(s, e, safe: true, now: r.now) ?? -1, 5, accuracy: 1e-9)
        // A status call queued meanwhile waits for the pause too.
        _ = r.core.enqueueGet()
        let (none, wake) = r.steps()
        XCTAssertTrue(none.isEmpty)
        XCTAssertEqual(wake ?? 0, r.now + 5, accuracy: 1e-9)
        r.clock.advance(5)
        let (taken, _) = r.steps()
        XCTAssertEqual(taken.count, 2)
        if case .submit = taken[0] {} else { XCTFail("the submit goes first") }
    }

    func testARetryAfterPastTheCapEndsTheCallAndPausesOnlyTheCap() {
        let r = Rig(rpm: 0, slots: 0)
        XCTAssertEqual(r.core.maxRetryAfter, 300)
        let s = r.submit(1)[0]
        _ = r.steps()
        var e = ApixoError(.rateLimited, "HTTP 429")
        e.httpStatus = 429
        for absurd in [1e16, .infinity, 301] {
            e.retryAfter = absurd
            XCTAssertNil(r.core.retryWait(e, attempt: 0, now: r.now), "\(absurd)")
        }
        XCTAssertNil(r.core.submitRefused(s, e, safe: true, now: r.now), "given up, not resent")
        _ = r.core.enqueueGet()
        let (none, wake) = r.steps()
        XCTAssertTrue(none.isEmpty)
        XCTAssertEqual(wake ?? 0, r.now + 300, accuracy: 1e-9, "the client-wide hold lasts the cap")
        // Within the cap it is honoured in full, for polls too.
        let t = task("p")
        r.core.submitAccepted(QueuedSubmit(key: SchedulerTests.key), as: t, listening: true, now: r.now)
        e.retryable = true
        e.retryAfter = 299
        r.clock.advance(300)
        _ = r.steps()
        XCTAssertEqual(r.core.pollFailed(t, e, now: r.now) ?? -1, 299, accuracy: 1e-9)
        e.retryAfter = 1e9
        XCTAssertNil(r.core.pollFailed(t, e, now: r.now))
        e.retryAfterHeader = "1000000000"
        XCTAssertEqual(e.beyondRetryAfterCap(300, capMs: 300_000).message,
                       "HTTP 429; the server asked to wait (Retry-After: 1000000000), more than the 300000 ms cap (max_retry_after_ms)")
        e.retryAfter = 300
        XCTAssertEqual(e.beyondRetryAfterCap(300, capMs: 300_000).message, "HTTP 429", "within the cap: unchanged")
    }

    func testAnIndeterminateSubmitKeepsItsSlotWhileSuchATaskWouldRun() {
        let r = Rig(rpm: 0, slots: 1)
        let s = r.submit(2)
        _ = r.steps()
        r.core.submitLost(s[0], now: r.now)
        XCTAssertEqual(r.budget.slotsHeld, 1)
        let (none, wake) = r.steps()
        XCTAssertTrue(none.isEmpty)
        let hold = r.policy.assumedRemaining(key: SchedulerTests.key, elapsed: 0)
        XCTAssertEqual(wake ?? 0, r.now + hold, accuracy: 1e-9)
        r.clock.advance(hold)
        XCTAssertTrue(submitted(r.steps().taken).elementsEqual([s[1]], by: ===))
    }

    func testAParkedTaskIsNotPolledAndGivesItsSlotBackWhenItWouldHaveEnded() {
        let r = Rig(rpm: 0, slots: 1)
        let s = r.submit(2)
        _ = r.steps()
        let t = task("t1")
        r.core.submitAccepted(s[0], as: t, listening: false, now: r.now)
        let hold = r.policy.assumedRemaining(key: SchedulerTests.key, elapsed: 0)
        var (none, wake) = r.steps()
        XCTAssertTrue(none.isEmpty, "no poll and no submit while parked")
        XCTAssertEqual(wake ?? 0, r.now + hold, accuracy: 1e-9)
        // Someone waits for it after all: polled at its first-poll time, the slot kept.
        r.clock.advance(5)
        r.core.setListening(t, true, now: r.now)
        (none, wake) = r.steps()
        let first = 1000 + r.policy.firstPollTarget(key: SchedulerTests.key, callbackMode: false)
        XCTAssertEqual(wake ?? 0, first, accuracy: 1e-9)
        // Nobody again: parked anew, the poll not postponed when it is woken up again.
        r.core.setListening(t, false, now: r.now)
        r.clock.now = 1000 + hold
        let (taken, _) = r.steps()
        guard case .forget(let gone)? = taken.first else { return XCTFail("the parked task is forgotten") }
        XCTAssertTrue(gone === t)
        XCTAssertFalse(t.holdsSlot)
        XCTAssertNil(r.core.tasks["t1"])
        XCTAssertTrue(submitted(taken).elementsEqual([s[1]], by: ===), "its slot went to the queued submit")
    }

    func testPollsAreRetriedWithBackoffThenTheTaskIsGivenUpButKeepsItsSlot() {
        let r = Rig(rpm: 0, slots: 1, retries: 2)
        let t = task("t1", origin: .resumed)
        r.core.track(t, listening: true, claimSlot: true, now: r.now)
        XCTAssertEqual(r.budget.slotsHeld, 1)
        XCTAssertEqual(polled(r.steps().taken).count, 1, "a task of unknown age is looked at at once")
        var e = ApixoError(.network, "reset")
        e.retryable = true
        XCTAssertEqual(r.core.pollFailed(t, e, now: r.now) ?? -1, 0.75, accuracy: 1e-9)
        r.clock.advance(0.75)
        XCTAssertEqual(polled(r.steps().taken).count, 1)
        XCTAssertEqual(r.core.pollFailed(t, e, now: r.now) ?? -1, 1.5, accuracy: 1e-9)
        r.clock.advance(1.5)
        XCTAssertEqual(polled(r.steps().taken).count, 1)
        XCTAssertNil(r.core.pollFailed(t, e, now: r.now), "out of retries")
        r.core.finish(t, terminal: false, now: r.now)
        XCTAssertNil(r.core.tasks["t1"])
        XCTAssertEqual(r.budget.slotsHeld, 1, "given up on, the task may still run: its slot is held")
        let (_, wake) = r.steps()
        XCTAssertNotNil(wake)
    }

    /// Issue #14: ten watched tasks that are still running, on an otherwise idle client, must
    /// not spend the whole budget. Counts the requests of one simulated minute.
    func testTenWatchedTasksSpendOnlyWhatTheirPollsNeed() {
        let r = Rig(rpm: 60, slots: 10)
        guard let polls = watchTenLateTasksForAMinute(r) else { return XCTFail("the tasks must stay scheduled") }
        XCTAssertEqual(r.core.overdueTasks, 10, "every watched task shares the budget")
        // Each was looked at once to learn its age, then polled at a fifth of its overrun
        // (about 54 s): 2 polls each. Before, they took the whole budget (issue #14).
        XCTAssertLessThanOrEqual(polls, 25, "polls in one minute: \(polls)")
        XCTAssertGreaterThanOrEqual(polls, 10)
    }

    /// The same with the learned policy (the default): ten watched tasks far past anything it
    /// has seen, on an idle client, for one simulated minute. Past everything seen, polls are
    /// spaced by a fifth of the lateness, so they take a small share of the budget although
    /// all of it is free.
    func testTenLateWatchedTasksSpendLittleWithTheLearnedPolicy() {
        let r = Rig(rpm: 60, slots: 10, pollPolicy: LearnedPollPolicy(scale: 1))
        guard let polls = watchTenLateTasksForAMinute(r) else { return XCTFail("the tasks must stay scheduled") }
        print("note: 10 late watched tasks, learned policy: \(polls) polls in a simulated minute (budget 60)")
        XCTAssertEqual(r.core.overdueTasks, 10, "every watched task shares the budget")
        // One look each to learn the age, then a fifth of ~265 s of lateness (53 s) apart:
        // about two polls each. Before issue #14 they took the whole budget.
        XCTAssertLessThanOrEqual(polls, 25, "polls in one minute: \(polls)")
        XCTAssertGreaterThanOrEqual(polls, 10)
    }

    /// Ten watched tasks, created on the server 5 minutes before the watch began and running
    /// throughout, on an otherwise idle client for one minute of its clock: the polls sent.
    func watchTenLateTasksForAMinute(_ r: Rig) -> Int? {
        let start = r.now
        for i in 0..<10 { r.core.track(task("w\(i)", origin: .watched), listening: true, claimSlot: false, now: r.now) }
        return pollRunning(r, until: start + 60, serverAge: { 300 + ($0 - start) })
    }

    /// Newly watched tasks of unknown age (just created) wait for their expected end after
    /// the first look, instead of being polled every second.
    func testAWatchedTaskLearnsItsAgeAndWaitsForItsExpectedEnd() {
        let r = Rig()
        let t = task("w", origin: .watched)
        r.core.track(t, listening: true, claimSlot: false, now: r.now)
        XCTAssertEqual(polled(r.steps().taken).count, 1)
        r.core.running(t, serverAge: 2, isPoll: true, now: r.now)
        let (_, wake) = r.steps()
        let target = r.policy.firstPollTarget(key: SchedulerTests.key, callbackMode: false)
        XCTAssertEqual(wake ?? 0, r.now + target - 2, accuracy: 1e-9)
        XCTAssertEqual(r.core.overdueTasks, 0, "the age probe does not make it overdue")
        // An absurd age (clocks apart) is not believed: counted from first seen.
        let u = task("u", origin: .watched)
        r.core.track(u, listening: true, claimSlot: false, now: r.now)
        _ = r.steps()
        r.core.running(u, serverAge: -50, isPoll: true, now: r.now)
        XCTAssertEqual(u.startedAt, r.now)
        // A server age shorter than what we have seen (its clock ahead) does not shorten it.
        let v = task("v", origin: .watched)
        r.core.track(v, listening: true, claimSlot: false, now: r.now)
        _ = r.steps()
        let seen = r.now
        r.clock.advance(10)
        r.core.running(v, serverAge: 3, isPoll: true, now: r.now)
        XCTAssertEqual(v.startedAt, seen)
    }

    /// A discrete-event run of the whole core: 30 tasks, 10 slots, 60 requests a minute,
    /// generation times drawn from the documented 2K range. It must never exceed the window
    /// nor the slots, and should need few polls per task.
    func testAWorkloadOnAFakeTimelineStaysInBudgetWithFewPolls() {
        var rng = SplitMix(seed: 7)
        let window = 60.0 * 1.05 + 0.02
        let clock = FakeClock()
        let budget = LocalBudget(requestsPerWindow: 60, window: window, maxSlots: 10)
        let core = Core(budget: budget, policy: PollPlanner(scale: 1), maxRetries: 3, scale: 1, random: { 0.5 })
        var doneAt: [String: Double] = [:]
        var startedAt: [String: Double] = [:]
        var sends: [Double] = []
        var inFlight = 0, peak = 0, finished = 0, totalPolls = 0, n = 0
        for _ in 0..<30 { core.enqueue(QueuedSubmit(key: SchedulerTests.key)) }
        while finished < 30 {
            switch core.next(now: clock.now) {
            case .submit(let s):
                sends.append(clock.now)
                n += 1
                let t = ScheduledTask(id: "t\(n)", key: SchedulerTests.key, callbackMode: false, origin: .submitted)
                doneAt[t.id] = clock.now + 25 + 10 * rng.next() + 1
                startedAt[t.id] = clock.now
                inFlight += 1
                peak = max(peak, inFlight)
                core.submitAccepted(s, as: t, listening: true, now: clock.now)
            case .poll(let t):
                sends.append(clock.now)
                totalPolls += 1
                if clock.now >= doneAt[t.id]! {
                    core.observe(key: t.key, duration: doneAt[t.id]! - startedAt[t.id]!)
                    core.finish(t, terminal: true, now: clock.now)
                    inFlight -= 1
                    finished += 1
                } else {
                    core.running(t, serverAge: clock.now - startedAt[t.id]!, isPoll: true, now: clock.now)
                }
            case .get, .forget:
                XCTFail("unexpected step")
            case .wait(let at):
                guard let at else { return XCTFail("stalled with \(30 - finished) tasks left") }
                clock.now = at
            }
        }
        var j = 0
        for k in sends.indices {
            while sends[k] - sends[j] >= 60 { j += 1 }
            XCTAssertLessThanOrEqual(k - j + 1, 60, "more than 60 requests in a 60 s window")
        }
        XCTAssertLessThanOrEqual(peak, 10)
        XCTAssertEqual(budget.slotsHeld, 0)
        let pollsPerTask = Double(totalPolls) / 30
        XCTAssertLessThan(pollsPerTask, 3.0, "polls per task: \(pollsPerTask)")
    }

    func testDequeKeepsOrderAcrossWrapAndGrowth() {
        var d = Deque<Int>()
        var model: [Int] = []
        var rng = SplitMix(seed: 3)
        for i in 0..<5000 {
            let r = rng.next()
            if r < 0.45 {
                d.append(i)
                model.append(i)
            } else if r < 0.6 {
                d.prepend(i)
                model.insert(i, at: 0)
            } else {
                XCTAssertEqual(d.removeFirst(), model.isEmpty ? nil : model.removeFirst())
            }
            XCTAssertEqual(d.count, model.count)
            XCTAssertEqual(d.first, model.first)
        }
    }
}
