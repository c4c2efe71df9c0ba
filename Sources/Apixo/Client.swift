import CApixoFork
import Glibc

/// What ended a tracked task for one listener.
public struct Outcome: Sendable {
    public let code: ApixoCode
    public let task: TaskSnapshot?
    /// One line, never the API key (sanitised here: it may quote a server's fail message).
    public let message: String

    init(code: ApixoCode, task: TaskSnapshot?, message: String) {
        self.code = code
        self.task = task
        self.message = Sanitizer.message(message)
    }
}

/// What a client dropped in a forked child leaves behind, never freed (see `Client.deinit`).
private final class ForkLeftovers {
    let parts: [Any?]
    init(_ parts: [Any?]) { self.parts = parts }
}

/// A completion callback: code, last snapshot (nil when none exists) and a one-line message
/// ("" on success). Runs on the client's dispatcher thread in the thread delivery mode, on the
/// host thread that calls `dispatch`, `drain` or `close` in the queue mode.
public typealias TaskCallback = @Sendable (ApixoCode, TaskSnapshot?, String) -> Void

/// A client of the APIXO task API: one engine thread drives every request through curl
/// multi under one budget (requests per minute, concurrent tasks); callbacks and log lines go
/// through its Delivery (a dispatcher thread, or a queue the host empties on its own thread).
/// Every method is safe to call from any thread.
///
/// `@unchecked Sendable`: every `let` is immutable or itself thread-safe (engine, delivery,
/// ledger, journal behind its own lock); `closing` and `listenerSeq` are guarded by
/// `stateLock`; all other `var`s (scheduler, tracked tasks, timers) are touched only on the
/// engine thread, inside closures posted with `engine.post`/`onEngine`. The compiler cannot
/// see that confinement, so the conformance is asserted here rather than checked.
public final class Client: @unchecked Sendable {
    let apiKey: String
    let baseURL: String
    let options: ClientOptions
    let logger: Logger
    let engine: Engine
    let delivery: Delivery
    let clock: Clock
    var journal: Journal?
    /// The process generation the client was created in (Sources/CApixoFork/fork.c).
    let generation = apx_fork_generation()

    // Shared state (under `stateLock`).
    private let stateLock = Mutex()
    /// Broadcast when `closing` becomes true: wakes the sleeps of blocking calls.
    private let closed = Condition()
    private var closing = false
    /// Whether init got as far as registering the key with the sanitiser (a failed init runs
    /// deinit, and must not unregister a key another client of this process still uses).
    private var keyRegistered = false
    /// Callbacks registered and not yet fired, for drain.
    let ledger = CallbackLedger()
    /// From a terminal answer to its callback, the worst seen (tests, benchmarks).
    let deliveryLag = LagMeter()

    // Engine-thread state (see Client+Engine.swift).
    /// Every decision about what to send and when; the engine thread is its I/O shell.
    let scheduler: Scheduler<PendingSubmit, TrackedTask>
    /// One-off requests (status calls) waiting for their token, by the scheduler's number.
    var oneOffs: [UInt64: OneOffRequest] = [:]
    var recentDone: [String: TaskSnapshot] = [:]
    var recentOrder: [String] = []
    var pumpTimer: TimerToken?
    var listenerSeq = 0
    var shutDown = false

    /// Creates a client and starts its threads.
    /// - Throws: `.invalidArgument` without an API key or with a bad base URL; `.io` when the
    ///   journal cannot be opened or is locked by another client.
    public convenience init(options: ClientOptions = ClientOptions(), clock: Clock = SystemClock()) throws {
        try self.init(options: options, clock: clock, budget: nil, policy: nil)
    }

    /// `budget` and `policy` replace the local budget (from the options' limits) and the
    /// poll policy the options choose (`LearnedPollPolicy` unless told otherwise).
    init(options: ClientOptions, clock: Clock, budget: Budget?, policy: PollPolicy?) throws {
        var opts = options
        guard let key = opts.apiKey ?? ClientOptions.environment("APIXO_API_KEY") else {
            throw ApixoError(.invalidArgument, "no API key: set one in the options or APIXO_API_KEY")
        }
        try opts.setAPIKey(key)
        let base = opts.baseURL ?? ClientOptions.environment("APIXO_BASE_URL") ?? ClientOptions.defaultBaseURL
        try opts.setBaseURL(base)
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        apiKey = key
        baseURL = b
        self.options = opts
        self.clock = clock
        if opts.delivery == .queue {
            let queue = try EventQueue()
            delivery = queue
            ledger.onChange = { [weak queue] in queue?.bump() }
        } else {
            delivery = DispatcherThread()
        }
        logger = Logger(sink: opts.logger, minLevel: opts.logLevel, delivery: delivery)
        // A small margin over the documented window absorbs the trip to the server.
        let window = 60 * opts.timeScale * 1.05 + 0.02
        let shared = opts.sharedBudgetURL ?? ClientOptions.environment("APIXO_SHARED_BUDGET")
        let chosen: Budget
        if let budget {
            chosen = budget
        } else if let shared {
            let url = try RedisURL.parse(shared)
            let ns = opts.sharedBudgetNamespace ?? SharedBudget.defaultNamespace(apiKey: key)
            chosen = SharedBudget(url: url, namespace: ns, requestsPerWindow: opts.requestsPerMinute, window: window,
                                  maxSlots: opts.maxConcurrentTasks, scale: opts.timeScale, logger: logger)
            logger.log(.info, "shared budget: \(url.display), namespace \(ns)")
        } else {
            chosen = LocalBudget(requestsPerWindow: opts.requestsPerMinute, window: window,
                                 maxSlots: opts.maxConcurrentTasks)
        }
        let defaultPolicy: PollPolicy
        switch opts.resolvedPollPolicy {
        case .learned: defaultPolicy = LearnedPollPolicy(scale: opts.timeScale)
        case .ewma: defaultPolicy = PollPlanner(scale: opts.timeScale)
        }
        scheduler = Scheduler(budget: chosen, policy: policy ?? defaultPolicy,
                              maxRetries: opts.maxRetries, scale: opts.timeScale,
                              maxRetryAfter: Double(opts.maxRetryAfterMs) / 1000)
        engine = try Engine(caFile: opts.caFile, clock: clock)
        if let path = opts.journalPath {
            journal = try Journal(path: path)
        }
        Sanitizer.register(key)  // from now on no message of this process can show it
        keyRegistered = true
        engine.start()
        delivery.start()
        logger.log(.debug, "client started: base \(baseURL), \(opts.requestsPerMinute) rpm, \(opts.maxConcurrentTasks) tasks, \(opts.resolvedPollPolicy.rawValue) poll policy")
    }

    deinit {
        if inForkedChild {
            // Leaked on purpose: locks and condition variables in there may be held or waited
            // on by threads of the parent (destroying them could block), and the engine's curl
            // state shares sockets with the parent. Only this object's own memory is freed.
            let parts: [Any?] = [engine, delivery, ledger, stateLock, journal, scheduler, oneOffs, recentDone, pumpTimer]
            _ = Unmanaged.passRetained(ForkLeftovers(parts))
            return
        }
        close()
    }

    /// Whether this call runs in a child of fork() of the process that created the client.
    /// There the client's threads do not exist: every call answers `.closed` at once and
    /// touches nothing of the parent's (no lock, no socket).
    public var inForkedChild: Bool { apx_fork_generation() != generation }

    public static let forkedMessage = "client created in another process; create one after fork"

    /// Stops the client: every pending callback fires with `.closed` (in the queue delivery
    /// mode on the calling thread), blocked calls return `.closed`, the threads are joined.
    /// Safe to call twice; must not be called from a callback.
    /// In a forked child it does nothing (see `inForkedChild`).
    public func close() {
        if inForkedChild { return }
        let first = stateLock.with { () -> Bool in
            if closing { return false }
            closing = true
            closed.broadcast()
            return true
        }
        guard first else { return }
        engine.post { [self] in shutdownOnEngine() }
        engine.stop()
        delivery.stop()
        journal?.close()
        if keyRegistered { Sanitizer.unregister(apiKey) }
    }

    var isClosing: Bool { stateLock.with { closing } }

    /// Throws `.closed` in a forked child; checked first by every entry point, before any lock.
    func checkProcess() throws {
        if inForkedChild { throw ApixoError(.closed, Client.forkedMessage) }
    }

    /// Sleeps `seconds` on the calling thread unless the client closes first (then at once).
    /// - Returns: false when the client closed.
    func sleepUnlessClosed(_ seconds: Double) -> Bool {
        let deadline = monotonicSeconds() + max(0, min(seconds, 1e9))
        return stateLock.with {
            while !closing {
                if !closed.wait(stateLock, until: deadline) { return !closing }
            }
            return false
        }
    }

    func checkOpen() throws {
        try checkProcess()
        if isClosing { throw ApixoError(.closed, "the client is closed") }
    }

    /// Posts work to the engine thread, or throws `.closed` when it has stopped (a close
    /// that raced with this call): a dropped post must never leave a caller waiting.
    func onEngine(_ work: @escaping () -> Void) throws {
        guard engine.post(work) else { throw ApixoError(.closed, "the client is closed") }
    }

    /// Hands an outcome to the Delivery; once the callback returned (or the event was taken)
    /// the delivery is recorded in the journal, then the drain ticket fires (so a drain returns
    /// only once deliveries are durable). The same for both delivery modes.
    func deliver(_ cb: @escaping TaskCallback, _ ticket: Int, _ outcome: Outcome, journalSeq: Int64?) {
        let reg = ledger.registration(ticket)
        // No reference to the client: a queued completion must not keep it alive.
        // The lag is from the answer that ended the task (this call) to its callback starting.
        let handedAt = clock.now
        let timed: TaskCallback = { [clock, deliveryLag] code, task, message in
            deliveryLag.record(clock.now - handedAt)
            cb(code, task, message)
        }
        delivery.complete(Completion(outcome, callback: reg.hasCallback ? timed : nil, userData: reg.userData,
                                     delivered: { [journal] in if let journalSeq { journal?.delivered(seq: journalSeq) } },
                                     release: { [ledger] in ledger.fired(ticket) }))
    }

    // MARK: blocking calls

    /// Submits a request and returns its task id once the API has accepted it. Waits in the
    /// local queue while the concurrency cap is reached.
    public func submit(_ request: Request) throws -> String {
        try submit(request, queueDeadline: nil)
    }

    /// A submit whose wait in the local queue ends after `queueTimeoutMs` with `.timeout`,
    /// nothing sent (< 0: no limit). Once sent, it runs to its answer.
    public func submit(_ request: Request, queueTimeoutMs: Int) throws -> String {
        try submit(request, queueDeadline: queueTimeoutMs < 0 ? nil : monotonicSeconds() + Double(queueTimeoutMs) / 1000)
    }

    func submit(_ request: Request, queueDeadline: Double?) throws -> String {
        try checkOpen()
        try request.validate()
        let w = Waiter<Result<String, ApixoError>>()
        let ps = try makePendingSubmit(request, callback: nil) { w.fulfill($0) }
        try onEngine { [self] in enqueueSubmit(ps) }
        if let got = w.wait(until: queueDeadline) { return try got.get() }
        engine.post { [self] in withdrawQueued(ps, .timeout) }
        return try w.wait(until: nil)!.get()
    }

    /// Takes a submit that is still in the local queue out of it and fails it with `code`
    /// (`.timeout`: its queue deadline passed; `.cancelled`: its Swift task was cancelled).
    /// A submit already sent is left to run to its answer. Engine thread.
    func withdrawQueued(_ ps: PendingSubmit, _ code: ApixoCode) {
        guard scheduler.cancelQueued(ps) else { return }
        let why = code == .timeout ? "queued past the deadline" : "cancelled while queued"
        if let seq = ps.journalSeq {
            journal?.terminal(seq: seq, code: code, message: why, snapshot: nil)
            journal?.delivered(seq: seq)
        }
        let what = ps.attempts == 0 ? "nothing was sent"
            : "its \(ps.attempts) attempt(s) never connected or were refused (429/503): no task was created"
        let head = code == .timeout ? "the submit waited in the local queue past the deadline"
            : "the submit was cancelled in the local queue"
        ps.onAccepted?(.failure(ApixoError(code, "\(head); \(what)")))
    }

    /// One status request for a task (retried on transient errors).
    public func status(model: String? = nil, taskId: String) throws -> TaskSnapshot {
        try checkOpen()
        let model = try Client.checkModel(model)
        try Client.checkTaskId(taskId)
        let w = Waiter<Result<TaskSnapshot, ApixoError>>()
        try onEngine { [self] in fetchStatus(model: model, taskId: taskId, attempt: 0) { w.fulfill($0) } }
        return try w.wait(until: nil)!.get()
    }

    /// Waits until the task is terminal. `timeoutMs` < 0 waits without a deadline; 0 checks once.
    /// - Returns: the successful task.
    /// - Throws: `.taskFailed` with the failed task; `.timeout` with the last snapshot (or none).
    public func wait(model: String? = nil, taskId: String, timeoutMs: Int) throws -> TaskSnapshot {
        try checkOpen()
        let model = try Client.checkModel(model)
        try Client.checkTaskId(taskId)
        let deadline = timeoutMs < 0 ? nil : monotonicSeconds() + Double(timeoutMs) / 1000
        return try waitTracked(model: model, taskId: taskId, deadline: deadline, checkOnce: timeoutMs == 0)
    }

    func waitTracked(model: String, taskId: String, deadline: Double?, checkOnce: Bool) throws -> TaskSnapshot {
        if checkOnce { return try Client.result(Client.checkedOnce(try status(model: model, taskId: taskId))) }
        let w = Waiter<Outcome>()
        let id = nextListenerID()
        try onEngine { [self] in addListener(taskId: taskId, model: model, tag: nil, .waiter(id, w), journalSeq: nil) }
        if let got = w.wait(until: deadline) { return try Client.result(got) }
        engine.post { [self] in timeOutWaiter(taskId: taskId, id: id, w) }
        return try Client.result(w.wait(until: nil)!)
    }

    /// Submits and waits with one overall deadline (`timeoutMs` < 0: none).
    public func generate(_ request: Request, timeoutMs: Int) throws -> TaskSnapshot {
        try checkProcess()
        let deadline = timeoutMs < 0 ? nil : monotonicSeconds() + Double(timeoutMs) / 1000
        let id = try submit(request, queueDeadline: deadline)
        if let deadline, deadline <= monotonicSeconds() {
            return try waitTracked(model: request.model, taskId: id, deadline: nil, checkOnce: true)
        }
        return try waitTracked(model: request.model, taskId: id, deadline: deadline, checkOnce: false)
    }

    /// The outcome of a wait that had no time left and checked the status once.
    static func checkedOnce(_ snap: TaskSnapshot) -> Outcome {
        Outcome(code: snap.state.isTerminal ? (snap.state == .success ? .ok : .taskFailed) : .timeout,
                task: snap, message: "task \(snap.id) is still \(snap.state.name)")
    }

    static func result(_ o: Outcome) throws -> TaskSnapshot {
        if o.code == .ok, let t = o.task { return t }
        throw ApixoError(o.code == .ok ? .protocol : o.code, o.message, task: o.task)
    }

    static func checkModel(_ model: String?) throws -> String { try Request.checkModel(model) }

    /// The wait before download retry `attempt` (0-based) after `e`: backoff with jitter, or the
    /// server's Retry-After when longer. nil when the Retry-After is past the cap: the call then
    /// ends with `e`, whose message now says what the server asked for.
    func retryDelay(_ e: inout ApixoError, attempt: Int) -> Double? {
        if let ra = e.retryAfter, ra > scheduler.maxRetryAfter {
            e = e.beyondRetryAfterCap(scheduler.maxRetryAfter, capMs: options.maxRetryAfterMs)
            return nil
        }
        return scheduler.backoff.retryDelay(retryAfter: e.retryAfter, attempt: attempt, random: Double.random(in: 0..<1))
    }

    static func checkTaskId(_ id: String) throws {
        guard !id.isEmpty, id.utf8.count <= 256, !id.utf8.contains(where: { $0 <= 32 || $0 == 127 }) else {
            throw ApixoError(.invalidArgument, "task_id must be 1 to 256 printable characters")
        }
    }

    func nextListenerID() -> Int {
        stateLock.with {
            listenerSeq += 1
            return listenerSeq
        }
    }

    // MARK: asynchronous calls

    /// Queues a submit; `callback` fires exactly once when the task ends or the submit fails.
    /// In the queue delivery mode `callback` may be nil (the completion is then only taken by
    /// `nextEvent`, or consumed by `dispatch`); `userData` travels with the completion event.
    public func submitAsync(_ request: Request, userData: UInt = 0, callback: TaskCallback?) throws {
        try checkOpen()
        try checkCallback(callback)
        try request.validate()
        let ticket = ledger.register(userData: userData, hasCallback: callback != nil)
        do {
            let ps = try makePendingSubmit(request, callback: (ticket, callback ?? Client.noCallback), onAccepted: nil)
            try onEngine { [self] in enqueueSubmit(ps) }
        } catch {
            ledger.fired(ticket)
            throw error
        }
    }

    /// Tracks an existing task; `callback` fires exactly once when it ends.
    /// `tag` is the caller's own id for it, kept in the journal and on its snapshots.
    /// `callback` and `userData` as for `submitAsync`.
    public func watch(model: String? = nil, taskId: String, tag: String? = nil, userData: UInt = 0,
                      callback: TaskCallback?) throws {
        try checkOpen()
        try checkCallback(callback)
        let model = try Client.checkModel(model)
        try Client.checkTaskId(taskId)
        let seq = try journal?.watch(model: model, taskId: taskId, tag: tag)
        let ticket = ledger.register(userData: userData, hasCallback: callback != nil)
        let cb = callback ?? Client.noCallback
        do {
            try onEngine { [self] in
                addListener(taskId: taskId, model: model, tag: tag, .callback(ticket, cb), journalSeq: seq)
                if let tag, let t = tasks[taskId], t.tag == nil { t.tag = tag }
            }
        } catch {
            ledger.fired(ticket)
            throw error
        }
    }

    /// What the client's budget looks like right now.
    public struct Stats: Sendable {
        /// Submits waiting for a concurrency slot or a request token.
        public let queuedSubmits: Int
        /// Concurrency slots taken (tasks in flight, or assumed to be).
        public let slotsInUse: Int
        /// Tasks being tracked (polled, parked or waited for).
        public let trackedTasks: Int
        /// Requests sent in the current rate window.
        public let requestsInWindow: Int
        /// Callbacks registered and not yet fired.
        public let pendingCallbacks: Int
    }

    public func stats() -> Stats {
        if inForkedChild {
            return Stats(queuedSubmits: 0, slotsInUse: 0, trackedTasks: 0, requestsInWindow: 0, pendingCallbacks: 0)
        }
        let pending = pendingCallbackCount
        let w = Waiter<Stats>()
        engine.post { [self] in
            w.fulfill(Stats(queuedSubmits: scheduler.queuedSubmits, slotsInUse: scheduler.budget.slotsHeld,
                            trackedTasks: tasks.count, requestsInWindow: scheduler.budget.requestsInWindow(now: clock.now),
                            pendingCallbacks: pending))
        }
        return w.wait(until: monotonicSeconds() + 5)
            ?? Stats(queuedSubmits: 0, slotsInUse: 0, trackedTasks: 0, requestsInWindow: 0, pendingCallbacks: pending)
    }

    /// Stops tracking a task: its callbacks fire with `.cancelled`. Nothing is cancelled on the
    /// server (the API has no cancel).
    /// - Throws: `.notFound` when the task is not tracked.
    public func cancel(taskId: String) throws {
        try checkOpen()
        try Client.checkTaskId(taskId)
        let w = Waiter<Bool>()
        try onEngine { [self] in w.fulfill(cancelOnEngine(taskId: taskId)) }
        guard w.wait(until: nil)! else {
            throw ApixoError(.notFound, "task \(taskId) is not tracked by this client")
        }
    }

    /// Waits until every callback registered before this call has fired (later ones are
    /// not waited for). `timeoutMs` < 0: no deadline.
    /// In the queue delivery mode it runs waiting callbacks on the calling thread meanwhile
    /// (see `drainQueue`).
    public func drain(timeoutMs: Int) throws {
        try checkProcess()
        if delivery.isDeliveryThread {
            throw ApixoError(.invalidArgument, "drain must not be called from a callback")
        }
        let deadline = timeoutMs < 0 ? nil : monotonicSeconds() + Double(timeoutMs) / 1000
        if let queue = delivery as? EventQueue { return try drainQueue(queue, until: deadline) }
        let left = ledger.wait(until: deadline)
        if isClosing { throw ApixoError(.closed, "the client was closed: pending callbacks fired with APIXO_ERR_CLOSED") }
        if left > 0 { throw ApixoError(.timeout, "\(left) callbacks still pending") }
    }

    /// Number of callbacks registered and not yet fired.
    public var pendingCallbackCount: Int { inForkedChild ? 0 : ledger.outstanding }
}
