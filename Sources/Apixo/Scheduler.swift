/// The scheduling core: every decision about what to send and when (submits in order, each
/// task's polls, retries and their backoff, 429 pauses, concurrency slots). No I/O, no
/// threads, no clock of its own: the shell (Client+Engine.swift) tells it what happened,
/// with the time, and asks `next(now:)` what to send, or when to ask again. The same events
/// give the same decisions, so tests and simulations drive it with a fake clock.
///
/// The shell's own records subclass `QueuedSubmit` and `ScheduledTask` (the request body,
/// listeners, snapshots, journal records); the fields declared here are the scheduler's and
/// only it writes them.
final class Scheduler<Submit: QueuedSubmit, Task: ScheduledTask> {
    /// What the shell does next.
    enum Step {
        /// Send this submit now. A request token and a slot (`lease`) are taken.
        case submit(Submit)
        /// Send a status request for this task now. A token is taken.
        case poll(Task)
        /// Send the one-off request `enqueueGet` returned this number for. A token is taken.
        case get(UInt64)
        /// A parked task (nobody waits for it) has run as long as such a task would: its
        /// slot is given back and it is no longer tracked.
        case forget(Task)
        /// Nothing to do now: ask again at this time, or after the next event (nil).
        case wait(Double?)
    }

    let budget: Budget
    let policy: PollPolicy
    let maxRetries: Int
    /// The longest server Retry-After honoured (seconds); a longer one ends the call.
    let maxRetryAfter: Double
    let backoff: Backoff
    /// Jitter for backoff, in 0..<1; tests pass a fixed sequence.
    let random: () -> Double
    /// Requests of the window that polls leave to waiting submits.
    let pollReserve: Int

    private var submits = Deque<Submit>()
    private var cancelledInQueue = 0
    private(set) var tasks: [String: Task] = [:]
    private var gets = Deque<UInt64>()
    private var getSeq: UInt64 = 0
    private var polls = Heap<PollEntry>(less: { $0.due < $1.due || ($0.due == $1.due && $0.seq < $1.seq) })
    private var holds = Heap<HoldEntry>(less: { $0.at < $1.at || ($0.at == $1.at && $0.seq < $1.seq) })
    private var seq: UInt64 = 0
    /// Tracked tasks that a poll found unfinished past their first look (every origin).
    private(set) var overdueTasks = 0

    private struct PollEntry {
        let due: Double
        let seq: UInt64
        let task: Task
        let gen: UInt64
    }

    /// A slot held past its task's tracking: released at `at` (with `task`: only if that task
    /// is still parked, then it is forgotten).
    private struct HoldEntry {
        let at: Double
        let seq: UInt64
        let lease: SlotLease
        let task: Task?
        let gen: UInt64
    }

    init(budget: Budget, policy: PollPolicy, maxRetries: Int, scale: Double, maxRetryAfter: Double = 300,
         random: @escaping () -> Double = { Double.random(in: 0..<1) }, pollReserve: Int = 1) {
        self.budget = budget
        self.pollReserve = max(0, pollReserve)
        self.policy = policy
        self.maxRetries = max(0, maxRetries)
        self.maxRetryAfter = max(0, maxRetryAfter)
        backoff = Backoff(scale: scale)
        self.random = random
    }

    /// Submits waiting for a slot or a token.
    var queuedSubmits: Int { submits.count - cancelledInQueue }

    var load: PollLoad {
        PollLoad(trackedTasks: tasks.count, queuedSubmits: queuedSubmits, requestsPerWindow: budget.requestShare,
                 window: budget.window, overdueTasks: overdueTasks)
    }

    // MARK: what to do next

    /// The next step at `now`. Call it until it answers `.wait`, then again at that time or
    /// after the next event. Submits go first, then one-off requests, then polls by due time.
    func next(now: Double) -> Step {
        while let h = holds.first, h.at <= now {
            holds.pop()
            guard let t = h.task else {
                budget.release(h.lease, now: now)
                continue
            }
            guard t.holdGen == h.gen, !t.listening, t.lease == h.lease, tasks[t.id] === t else { continue }
            budget.release(h.lease, now: now)
            t.lease = nil
            untrack(t)
            return .forget(t)
        }
        while let p = polls.first, p.gen != p.task.pollGen { polls.pop() }
        while let s = submits.first, s.state == .cancelled {
            submits.removeFirst()
            cancelledInQueue -= 1
        }
        let ready = budget.nextRequestTime(now: now)
        var at = Double.infinity
        var kind: NextKind?
        if let s = submits.first, budget.slotAvailable(now: now) {
            at = max(ready, s.notBefore)
            kind = .submit
        }
        if !gets.isEmpty, ready < at {
            at = ready
            kind = .get
        }
        if let p = polls.first {
            // While submits wait, polls leave a few requests of the window to them, so that a
            // completion seen in a busy minute is followed by its submit at once.
            let r = queuedSubmits > 0 ? budget.nextRequestTime(now: now, reserve: min(pollReserve, queuedSubmits)) : ready
            if max(r, p.due) < at {
                at = max(r, p.due)
                kind = .poll
            }
        }
        guard let kind, at <= now else {
            var wake = at
            if let h = holds.first { wake = min(wake, h.at) }
            if let b = budget.tick(now: now) { wake = min(wake, b) }
            return .wait(wake.isFinite ? max(wake, now) : nil)
        }
        // A shared budget may refuse what it just offered (another client won the race):
        // ask again a little later rather than spin.
        func retryLater() -> Step { .wait(max(budget.nextRequestTime(now: now), now + 0.01 * backoff.scale)) }
        switch kind {
        case .submit:
            guard let s = submits.first,
                  let lease = budget.takeSlot(now: now, hold: policy.assumedRemaining(key: s.key, elapsed: 0)) else {
                return retryLater()
            }
            guard budget.takeRequest(now: now) else {
                budget.release(lease, now: now)
                return retryLater()
            }
            submits.removeFirst()
            s.attempts += 1
            s.lease = lease
            s.state = .sent
            return .submit(s)
        case .get:
            guard budget.takeRequest(now: now), let g = gets.removeFirst() else { return retryLater() }
            return .get(g)
        case .poll:
            guard budget.takeRequest(now: now), let p = polls.pop() else { return retryLater() }
            let t = p.task
            t.pollGen += 1
            t.pollDue = nil
            t.pollInFlight = true
            return .poll(t)
        }
    }

    // MARK: submits

    /// A submit requested: queued behind the others.
    func enqueue(_ s: Submit) {
        s.state = .queued
        submits.append(s)
    }

    /// Takes a submit out of the queue before it is sent (its caller gave up waiting).
    /// - Returns: false when it was already sent or ended.
    func cancelQueued(_ s: Submit) -> Bool {
        guard s.state == .queued else { return false }
        s.state = .cancelled
        cancelledInQueue += 1
        return true
    }

    /// The API accepted a submit as task `t` (the shell's record for its id: a new one, or
    /// one already tracked because someone watched the id first). The slot moves to the task.
    func submitAccepted(_ s: Submit, as t: Task, listening: Bool, now: Double) {
        s.state = .ended
        if let lease = s.lease {
            if t.lease == nil { t.lease = lease } else { budget.release(lease, now: now) }
            s.lease = nil
        }
        if tasks[t.id] !== t {
            t.startedAt = now
            t.ageKnown = true
            tasks[t.id] = t
        }
        setListening(t, listening, now: now)
    }

    /// The server certainly did not take a submit (`safe`: refused before or without
    /// creating anything). Its slot is given back.
    /// - Returns: the wait before it is sent again (it goes back to the head of the queue),
    ///   or nil when it ends with this error.
    func submitRefused(_ s: Submit, _ e: ApixoError, safe: Bool, now: Double) -> Double? {
        if let lease = s.lease { budget.release(lease, now: now) }
        s.lease = nil
        guard safe, s.attempts <= maxRetries, let wait = retryWait(e, attempt: s.attempts - 1, now: now) else {
            s.state = .ended
            return nil
        }
        s.notBefore = now + wait
        s.state = .queued
        submits.prepend(s)
        return wait
    }

    /// The submit went out and its answer was lost (or made no sense): the task may exist,
    /// so its slot stays taken for as long as such a task would run.
    func submitLost(_ s: Submit, now: Double) {
        s.state = .ended
        if let lease = s.lease { hold(lease, for: policy.assumedRemaining(key: s.key, elapsed: 0), now: now) }
        s.lease = nil
    }

    /// The client closed with the submit in flight.
    func submitAborted(_ s: Submit, now: Double) {
        s.state = .ended
        if let lease = s.lease { budget.release(lease, now: now) }
        s.lease = nil
    }

    /// A submit that was sent in an earlier run and never answered (found in the journal):
    /// the task may run, so a slot is counted for as long as it would.
    func holdForUnknownTask(key: String, now: Double) {
        hold(budget.claimSlot(now: now, hold: policy.assumedRemaining(key: key, elapsed: 0)),
             for: policy.assumedRemaining(key: key, elapsed: 0), now: now)
    }

    // MARK: tasks

    /// Starts tracking a task this client did not just submit (watched, or resumed from a
    /// journal). `claimSlot`: it was submitted by this account and may still run, so it
    /// counts toward the concurrency cap. Its age is unknown until the first answer, which
    /// is asked for at once.
    func track(_ t: Task, listening: Bool, claimSlot: Bool, now: Double) {
        guard tasks[t.id] == nil else { return }
        t.startedAt = now
        t.ageKnown = false
        if claimSlot { t.lease = budget.claimSlot(now: now, hold: policy.assumedRemaining(key: t.key, elapsed: 0)) }
        tasks[t.id] = t
        setListening(t, listening, now: now)
    }

    /// Someone waits for the task (polls it) or nobody does any more (it is parked: no
    /// polls, and its slot is given back when such a task would have finished).
    /// - Returns: false when the task is no longer tracked (parked without a slot).
    @discardableResult
    func setListening(_ t: Task, _ on: Bool, now: Double) -> Bool {
        guard tasks[t.id] === t else { return false }
        t.listening = on
        t.holdGen += 1
        if !on {
            if t.overdue {
                // Parked tasks are not polled: they take no share of the budget.
                t.overdue = false
                overdueTasks -= 1
            }
            if let due = t.pollDue {
                t.parkedDue = due
                t.pollDue = nil
                t.pollGen += 1
            }
            guard let lease = t.lease else {
                untrack(t)
                return false
            }
            let d = policy.assumedRemaining(key: t.key, elapsed: now - t.startedAt)
            seq += 1
            holds.push(HoldEntry(at: now + d, seq: seq, lease: lease, task: t, gen: t.holdGen))
            return true
        }
        guard t.pollDue == nil, !t.pollInFlight else { return true }
        let delay: Double
        if let due = t.parkedDue {
            t.parkedDue = nil
            delay = max(0, due - now)
        } else if !t.ageKnown {
            delay = 0
        } else {
            delay = policy.nextPollDelay(context(t, now: now))
        }
        schedulePoll(t, at: now + delay)
        return true
    }

    /// A poll, a status call or a webhook found the task unfinished. `serverAge`: how long it
    /// has existed by the server's createTime (seconds), when known. `isPoll`: the answer to
    /// this task's own poll (which then counts, and the next one is planned).
    func running(_ t: Task, serverAge: Double?, isPoll: Bool, now: Double) {
        guard tasks[t.id] === t else { return }
        if isPoll {
            t.pollInFlight = false
            t.failures = 0
            t.polls += 1
        }
        if !t.ageKnown, isPoll || serverAge != nil {
            // A task we did not submit: its server age tells how long it has run. An age that
            // is negative or absurd (clocks apart) is not believed.
            // It has run at least as long as we have seen it (the monotonic clock): the server
            // age may only say longer.
            if let age = serverAge, age.isFinite, age > 0, age < 30 * 86_400 { t.startedAt = min(t.startedAt, now - age) }
            t.ageKnown = true
            t.probed = isPoll
        }
        if isPoll, !t.overdue, t.polls >= (t.probed ? 2 : 1) {
            t.overdue = true
            overdueTasks += 1
        }
        if let lease = t.lease {
            budget.renew(lease, now: now, hold: policy.assumedRemaining(key: t.key, elapsed: now - t.startedAt))
        }
        if t.listening, t.pollDue == nil, !t.pollInFlight {
            schedulePoll(t, at: now + policy.nextPollDelay(context(t, now: now)))
        }
    }

    /// A poll failed. The task's failures count toward `maxRetries`.
    /// - Returns: the wait before the next poll, or nil when the task ends with this error
    ///   (the shell then calls `finish(terminal: false)`).
    func pollFailed(_ t: Task, _ e: ApixoError, now: Double) -> Double? {
        guard tasks[t.id] === t else { return nil }
        t.pollInFlight = false
        t.failures += 1
        guard e.retryable, t.failures <= maxRetries, let wait = retryWait(e, attempt: t.failures - 1, now: now) else {
            return nil
        }
        if t.listening { schedulePoll(t, at: now + wait) }
        return wait
    }

    /// Ends tracking. `terminal`: the task was seen finished, so its slot is free; otherwise
    /// (given up on) it may still run, and its slot is kept for as long as it would.
    func finish(_ t: Task, terminal: Bool, now: Double) {
        let elapsed = now - t.startedAt
        if tasks[t.id] === t { untrack(t) }
        t.pollInFlight = false
        guard let lease = t.lease else { return }
        t.lease = nil
        if terminal {
            budget.release(lease, now: now)
        } else {
            hold(lease, for: policy.assumedRemaining(key: t.key, elapsed: elapsed), now: now)
        }
    }

    /// A completed task's duration (seconds, sanity-checked by the caller) for the policy.
    func observe(key: String, duration: Double) {
        policy.observe(key: key, duration: duration)
    }

    // MARK: one-off requests

    /// Queues a one-off request (a status call) for the next free token.
    /// - Returns: its number, handed back in `.get` when it may go.
    func enqueueGet() -> UInt64 {
        getSeq += 1
        gets.append(getSeq)
        return getSeq
    }

    // MARK: retries

    /// The wait before retry `attempt` (0-based) after `e`: backoff with jitter, or the
    /// server's Retry-After when longer. A 429 also pauses every request of the client.
    /// nil when the Retry-After is past `maxRetryAfter`: the call ends with `e` (and a 429's
    /// pause lasts the cap, never longer).
    func retryWait(_ e: ApixoError, attempt: Int, now: Double) -> Double? {
        if let ra = e.retryAfter, !(ra <= maxRetryAfter) {
            if e.httpStatus == 429 { budget.pause(until: now + maxRetryAfter) }
            return nil
        }
        let wait = backoff.retryDelay(retryAfter: e.retryAfter, attempt: attempt, random: random())
        if e.httpStatus == 429 { budget.pause(until: now + (e.retryAfter ?? wait)) }
        return wait
    }

    // MARK: shutdown

    /// Empties the scheduler: the queued submits, every tracked task and the queued one-off
    /// requests, for the shell to fail with `.closed`. Slots are given back.
    func shutdown(now: Double) -> (submits: [Submit], tasks: [Task], gets: [UInt64]) {
        var queued: [Submit] = []
        while let s = submits.removeFirst() {
            guard s.state == .queued else { continue }
            s.state = .ended
            queued.append(s)
        }
        cancelledInQueue = 0
        let all = Array(tasks.values)
        for t in all {
            untrack(t)
            if let lease = t.lease { budget.release(lease, now: now) }
            t.lease = nil
        }
        var ids: [UInt64] = []
        while let g = gets.removeFirst() { ids.append(g) }
        polls = Heap(less: { $0.due < $1.due || ($0.due == $1.due && $0.seq < $1.seq) })
        holds = Heap(less: { $0.at < $1.at || ($0.at == $1.at && $0.seq < $1.seq) })
        return (queued, all, ids)
    }

    // MARK: internals

    private func context(_ t: Task, now: Double) -> PollContext {
        PollContext(key: t.key, elapsed: now - t.startedAt, polls: t.polls, callbackMode: t.callbackMode, load: load)
    }

    private func schedulePoll(_ t: Task, at due: Double) {
        t.pollGen += 1
        t.pollDue = due
        seq += 1
        polls.push(PollEntry(due: due, seq: seq, task: t, gen: t.pollGen))
    }

    private func hold(_ lease: SlotLease, for d: Double, now: Double) {
        seq += 1
        holds.push(HoldEntry(at: now + max(0, d), seq: seq, lease: lease, task: nil, gen: 0))
    }

    private func untrack(_ t: Task) {
        if tasks[t.id] === t { tasks[t.id] = nil }
        t.pollGen += 1
        t.holdGen += 1
        t.pollDue = nil
        t.parkedDue = nil
        if t.overdue {
            t.overdue = false
            overdueTasks -= 1
        }
    }
}

/// Which queue the scheduler's next step comes from.
private enum NextKind { case submit, get, poll }

/// A submit as the scheduler sees it. The shell subclasses it with the request itself.
class QueuedSubmit {
    enum State { case new, queued, sent, cancelled, ended }
    /// "model|resolution": what the policy expects of the task.
    let key: String
    /// Times it was sent.
    fileprivate(set) var attempts = 0
    /// Not sent again before this time (a retry's backoff).
    fileprivate(set) var notBefore: Double = 0
    /// The slot it holds while in flight.
    fileprivate(set) var lease: SlotLease?
    fileprivate(set) var state = State.new

    init(key: String) {
        self.key = key
    }
}

/// How the client came to track a task.
enum TaskOrigin {
    case submitted, watched, resumed
}

/// A task as the scheduler sees it. The shell subclasses it with listeners and snapshots.
class ScheduledTask {
    let id: String
    /// "model|resolution"
    let key: String
    let callbackMode: Bool
    let origin: TaskOrigin
    /// When it started, on the scheduler's clock (for a watched task: when first seen, moved
    /// back by its server age once known).
    fileprivate(set) var startedAt: Double = 0
    fileprivate(set) var ageKnown = true
    /// The first poll only learned a watched task's age.
    fileprivate(set) var probed = false
    /// Its concurrency slot, when it holds one.
    fileprivate(set) var lease: SlotLease?
    /// Someone waits for it: it is polled. Otherwise it is parked.
    fileprivate(set) var listening = false
    /// Polls that found it unfinished.
    fileprivate(set) var polls = 0
    /// Failed polls in a row.
    fileprivate(set) var failures = 0
    fileprivate(set) var overdue = false
    /// The next poll, while it is listened to and none is in flight.
    fileprivate(set) var pollDue: Double?
    /// When its poll was due as it was parked, so that re-activating it does not postpone it.
    fileprivate(set) var parkedDue: Double?
    fileprivate(set) var pollInFlight = false
    fileprivate var pollGen: UInt64 = 0
    fileprivate var holdGen: UInt64 = 0

    var holdsSlot: Bool { lease != nil }

    init(id: String, key: String, callbackMode: Bool, origin: TaskOrigin) {
        self.id = id
        self.key = key
        self.callbackMode = callbackMode
        self.origin = origin
    }
}

/// A double-ended queue on a ring buffer: O(1) at both ends.
struct Deque<T> {
    private var buffer: [T?] = []
    private var head = 0
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }
    var first: T? { count == 0 ? nil : buffer[head] }

    private mutating func grow() {
        var bigger = [T?](repeating: nil, count: max(16, buffer.count * 2))
        for i in 0..<count { bigger[i] = buffer[(head + i) % buffer.count] }
        buffer = bigger
        head = 0
    }

    mutating func append(_ x: T) {
        if count == buffer.count { grow() }
        buffer[(head + count) % buffer.count] = x
        count += 1
    }

    mutating func prepend(_ x: T) {
        if count == buffer.count { grow() }
        head = (head + buffer.count - 1) % buffer.count
        buffer[head] = x
        count += 1
    }

    @discardableResult
    mutating func removeFirst() -> T? {
        guard count > 0 else { return nil }
        let x = buffer[head]
        buffer[head] = nil
        head = (head + 1) % buffer.count
        count -= 1
        return x
    }
}
