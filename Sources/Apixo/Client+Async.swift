/// The Swift-concurrency API: `async` versions of the blocking calls and an `AsyncSequence`
/// of a task's states, for Swift hosts (Vapor, Hummingbird, command-line tools).
///
/// They run on the same engine as every other call: each suspends on a continuation that the
/// engine thread resumes (through the submit, listener and status paths the callbacks use), so
/// no thread is blocked or started per call. Cancelling the Swift task stops that call's
/// tracking at once: a queued submit leaves the queue unsent, a wait or an update stream drops
/// its listener, and the call throws `ApixoError(.cancelled)` whose `task` carries the task id
/// whenever one exists (the task itself goes on on the server: the API has no cancel).

extension Client {
    /// Submits a request and returns its task id once the API has accepted it.
    ///
    /// Waits in the local queue while the concurrency cap is reached, like the blocking
    /// `submit(_:)`. A submit that was already sent runs to its answer (bounded by the request
    /// timeout and retries).
    /// - Parameters:
    ///   - request: what to generate; validated before anything is queued.
    ///   - queueTimeout: how long the submit may wait in the local queue; nil waits as long as
    ///     it takes. When it passes, nothing is sent.
    /// - Returns: the task id the API gave the new task.
    /// - Throws: `ApixoError` with `.invalidArgument` for a bad request, `.timeout` when the
    ///   queue timeout passed, `.cancelled` when the Swift task was cancelled (`task` holds the
    ///   id when the API had already created the task), `.closed`, or the API's error.
    public func submit(_ request: Request, queueTimeout: Duration?) async throws -> String {
        try await submit(request, queueDeadline: queueTimeout.map { monotonicSeconds() + Client.seconds($0) })
    }

    /// Submits a request without a queue timeout; see `submit(_:queueTimeout:)`.
    /// - Parameter request: what to generate.
    /// - Returns: the task id.
    /// - Throws: `ApixoError`, as `submit(_:queueTimeout:)`.
    public func submit(_ request: Request) async throws -> String {
        try await submit(request, queueDeadline: nil)
    }

    func submit(_ request: Request, queueDeadline: Double?) async throws -> String {
        try checkOpen()
        try request.validate()
        return try await Client.bridge { (call: AsyncCall<String>) in
            let ps = try makePendingSubmit(request, callback: nil) { result in
                if case .success(let id) = result, call.isCancelled {
                    call.finish(.failure(ApixoError(.cancelled, "the submit was cancelled after task \(id) was created; it runs on",
                                                    task: TaskSnapshot.standIn(id: id, model: request.model, tag: request.tag))))
                } else {
                    call.finish(result)
                }
            }
            try onEngine { [self] in
                enqueueSubmit(ps)
                if let queueDeadline {
                    let timer = engine.after(queueDeadline - monotonicSeconds()) { [self] in withdrawQueued(ps, .timeout) }
                    call.onFinish { timer.cancelled = true }
                }
            }
            call.whenCancelled { [self] in
                engine.post { [self] in withdrawQueued(ps, .cancelled) }
            }
        }
    }

    /// One status request for a task (retried on transient errors), without tracking it.
    /// - Parameters:
    ///   - model: the task's model; nil for the default model.
    ///   - taskId: the id `submit` returned.
    /// - Returns: the task's snapshot as the API reported it.
    /// - Throws: `ApixoError`: `.invalidArgument`, `.notFound`, `.cancelled` (with the task id)
    ///   when the Swift task was cancelled, `.closed`, or the API's error.
    public func status(model: String? = nil, taskId: String) async throws -> TaskSnapshot {
        try checkOpen()
        let model = try Client.checkModel(model)
        try Client.checkTaskId(taskId)
        return try await Client.bridge { (call: AsyncCall<TaskSnapshot>) in
            try onEngine { [self] in fetchStatus(model: model, taskId: taskId, attempt: 0) { call.finish($0) } }
            call.whenCancelled {
                call.finish(.failure(ApixoError(.cancelled, "the status request for task \(taskId) was cancelled",
                                                task: TaskSnapshot.standIn(id: taskId, model: model, tag: nil))))
            }
        }
    }

    /// Waits until the task is terminal, tracking it through the client's shared poll budget.
    /// - Parameters:
    ///   - model: the task's model; nil for the default model.
    ///   - taskId: the task to wait for.
    ///   - timeout: nil waits without a deadline; `.zero` checks the status once.
    /// - Returns: the successful task.
    /// - Throws: `ApixoError` with `.taskFailed` (the failed task in `task`), `.timeout` or
    ///   `.cancelled` (the last snapshot, or a stand-in with the id, in `task`), `.closed`.
    public func wait(model: String? = nil, taskId: String, timeout: Duration? = nil) async throws -> TaskSnapshot {
        try checkOpen()
        let model = try Client.checkModel(model)
        try Client.checkTaskId(taskId)
        return try await waitTracked(model: model, taskId: taskId, deadline: timeout.map { monotonicSeconds() + Client.seconds($0) })
    }

    /// Submits and waits with one overall deadline, as the blocking `generate(_:timeoutMs:)`.
    ///
    /// The call a web handler makes: `let task = try await client.generate(request)`.
    /// - Parameters:
    ///   - request: what to generate.
    ///   - timeout: covers the local queue, the submit and the wait; nil: no deadline.
    /// - Returns: the successful task; its `resultURLs` are the images.
    /// - Throws: `ApixoError`, as `submit(_:queueTimeout:)` and `wait(model:taskId:timeout:)`.
    ///   Once the task exists every error carries its id in `task`, so that the caller can
    ///   wait for it or download it later.
    public func generate(_ request: Request, timeout: Duration? = nil) async throws -> TaskSnapshot {
        let deadline = timeout.map { monotonicSeconds() + Client.seconds($0) }
        let id = try await submit(request, queueDeadline: deadline)
        return try await waitTracked(model: request.model, taskId: id, deadline: deadline)
    }

    /// Every error it throws carries the task (the last snapshot, or a stand-in with the id),
    /// also when the client closed before the wait reached the engine.
    func waitTracked(model: String, taskId: String, deadline: Double?) async throws -> TaskSnapshot {
        let standIn = TaskSnapshot.standIn(id: taskId, model: model, tag: nil)
        do {
            return try await waitTracked(model: model, taskId: taskId, deadline: deadline, standIn: standIn)
        } catch var e as ApixoError where e.task == nil {
            e.task = standIn
            throw e
        }
    }

    private func waitTracked(model: String, taskId: String, deadline: Double?, standIn: TaskSnapshot) async throws -> TaskSnapshot {
        if let deadline, deadline <= monotonicSeconds() {
            return try Client.result(Client.checkedOnce(try await status(model: model, taskId: taskId)))
        }
        return try await Client.bridge { (call: AsyncCall<TaskSnapshot>) in
            let id = nextListenerID()
            let w = Waiter<Outcome> { o in
                call.finish(Result { try Client.result(o.task == nil ? Outcome(code: o.code, task: standIn, message: o.message) : o) }
                    .mapError { $0 as? ApixoError ?? ApixoError(.protocol, "\($0)") })
            }
            try onEngine { [self] in
                addListener(taskId: taskId, model: model, tag: nil, .waiter(id, w), journalSeq: nil)
                if let deadline {
                    let timer = engine.after(deadline - monotonicSeconds()) { [self] in timeOutWaiter(taskId: taskId, id: id, w) }
                    call.onFinish { timer.cancelled = true }
                }
            }
            call.whenCancelled { [self] in
                if !engine.post({ [self] in timeOutWaiter(taskId: taskId, id: id, w, code: .cancelled) }) {
                    w.fulfill(Outcome(code: .closed, task: standIn, message: "the client is closed"))
                }
            }
        }
    }

    /// The states a task goes through, as this client's polls (or status calls, or webhooks)
    /// see them: one snapshot per change of state, the first as soon as one is known, the last
    /// the terminal one (`.success` or `.failed`; a failed task ends the sequence normally,
    /// its snapshot says why).
    ///
    /// Iterating tracks the task like a `wait` does: it shares the client's poll budget, and
    /// ending the iteration early (break, or cancelling the Swift task) drops the tracking.
    /// - Parameters:
    ///   - model: the task's model; nil for the default model.
    ///   - taskId: the task to follow.
    /// - Returns: an `AsyncThrowingStream` of snapshots.
    /// - Throws: `ApixoError(.invalidArgument)` for a bad model or id and `.closed` for a closed
    ///   client, at once. The stream itself throws when tracking fails (`.notFound`,
    ///   `.closed`, a network error after the retries), with the last snapshot or a stand-in
    ///   with the id in `task`.
    public func updates(model: String? = nil, taskId: String) throws -> AsyncThrowingStream<TaskSnapshot, Error> {
        try checkOpen()
        let model = try Client.checkModel(model)
        try Client.checkTaskId(taskId)
        let (stream, out) = AsyncThrowingStream<TaskSnapshot, Error>.makeStream()
        let lastState = Locked<TaskState?>(nil)
        @Sendable func yieldIfNew(_ s: TaskSnapshot) {
            if lastState.swap(s.state) != s.state { out.yield(s) }
        }
        let id = nextListenerID()
        let w = Waiter<Outcome> { o in
            if (o.code == .ok || o.code == .taskFailed), let s = o.task, s.state.isTerminal {
                yieldIfNew(s)
                out.finish()
            } else {
                out.finish(throwing: ApixoError(o.code == .ok ? .protocol : o.code, o.message,
                                                task: o.task ?? TaskSnapshot.standIn(id: taskId, model: model, tag: nil)))
            }
        }
        // Set before the listener exists, so that no ending of the stream can miss it. Weak: an
        // abandoned stream must not keep the client open.
        out.onTermination = { [weak self] reason in
            guard let client = self else { return }
            client.engine.post {
                client.tasks[taskId]?.observers[id] = nil
                if case .cancelled = reason { client.timeOutWaiter(taskId: taskId, id: id, w, code: .cancelled) }
            }
        }
        try onEngine { [self] in
            addListener(taskId: taskId, model: model, tag: nil, .waiter(id, w), journalSeq: nil)
            guard let t = tasks[taskId], t.listeners.contains(where: { if case .waiter(id, _) = $0 { return true } else { return false } })
            else { return }
            if let s = t.snapshot { yieldIfNew(s) }
            t.observers[id] = { yieldIfNew($0) }
        }
        return stream
    }

    static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// Runs `start` with a fresh `AsyncCall` and suspends until something finishes it; a
    /// cancellation of the Swift task runs the action `start` registered with `whenCancelled`.
    static func bridge<T: Sendable>(_ start: (AsyncCall<T>) throws -> Void) async throws -> T {
        let call = AsyncCall<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
                call.install(c)
                do { try start(call) } catch {
                    call.finish(.failure(error as? ApixoError ?? ApixoError(.protocol, "\(error)")))
                }
            }
        } onCancel: {
            call.cancel()
        }
    }
}

/// One `async` call in flight: resumes its continuation exactly once, with whichever result
/// comes first (the engine's answer, a timer, a cancellation). Thread-safe.
final class AsyncCall<T: Sendable>: @unchecked Sendable {
    private let mutex = Mutex()
    private var continuation: CheckedContinuation<T, Error>?
    private var result: Result<T, ApixoError>?
    private var cancelled = false
    private var cancelAction: (() -> Void)?
    private var finishActions: [() -> Void] = []

    var isCancelled: Bool { mutex.with { cancelled } }

    func install(_ c: CheckedContinuation<T, Error>) {
        let early = mutex.with { () -> Result<T, ApixoError>? in
            if result == nil { continuation = c }
            return result
        }
        if let early { c.resume(with: early.mapError { $0 as Error }) }
    }

    /// The first result wins; later ones are ignored.
    func finish(_ r: Result<T, ApixoError>) {
        let (c, actions) = mutex.with { () -> (CheckedContinuation<T, Error>?, [() -> Void]) in
            guard result == nil else { return (nil, []) }
            result = r
            cancelAction = nil
            let c = continuation
            continuation = nil
            defer { finishActions = [] }
            return (c, finishActions)
        }
        for a in actions { a() }
        c?.resume(with: r.mapError { $0 as Error })
    }

    /// Runs `action` when the call finishes (at once if it has). For cleanup such as a timer.
    func onFinish(_ action: @escaping () -> Void) {
        let now = mutex.with { () -> Bool in
            if result != nil { return true }
            finishActions.append(action)
            return false
        }
        if now { action() }
    }

    /// Registers what a cancellation does; runs it at once when the task is already cancelled.
    func whenCancelled(_ action: @escaping () -> Void) {
        let now = mutex.with { () -> Bool in
            if result != nil { return false }
            if cancelled { return true }
            cancelAction = action
            return false
        }
        if now { action() }
    }

    func cancel() {
        let action = mutex.with { () -> (() -> Void)? in
            cancelled = true
            defer { cancelAction = nil }
            return cancelAction
        }
        action?()
    }
}

/// A value behind a mutex.
final class Locked<T>: @unchecked Sendable {
    private let mutex = Mutex()
    private var value: T

    init(_ value: T) { self.value = value }

    /// Stores `new` and returns what was there.
    func swap(_ new: T) -> T {
        update { v in
            let old = v
            v = new
            return old
        }
    }

    /// Runs `body` on the value with the lock held.
    func update<R>(_ body: (inout T) -> R) -> R {
        mutex.with { body(&value) }
    }
}
