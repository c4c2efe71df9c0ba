import CCurl

/// Who is waiting for a tracked task.
enum Listener {
    /// A callback and its drain ticket (`Client.register`).
    case callback(Int, TaskCallback)
    case waiter(Int, Waiter<Outcome>)
}

/// A submit: the request, its body and who waits for it; the scheduler's part is in
/// `QueuedSubmit`.
final class PendingSubmit: QueuedSubmit {
    let request: Request
    let body: [UInt8]
    let callback: (Int, TaskCallback)?
    let onAccepted: ((Result<String, ApixoError>) -> Void)?
    var journalSeq: Int64?

    init(request: Request, body: [UInt8], callback: (Int, TaskCallback)?,
         onAccepted: ((Result<String, ApixoError>) -> Void)?) {
        self.request = request
        self.body = body
        self.callback = callback
        self.onAccepted = onAccepted
        super.init(key: pollKey(model: request.model, resolution: request.resolutionKey))
    }
}

/// A task the engine knows about: who waits for it and what was last seen; the scheduler's
/// part (slot, polls) is in `ScheduledTask`. Engine thread only.
final class TrackedTask: ScheduledTask {
    let model: String
    let resolution: String
    var tag: String?
    var snapshot: TaskSnapshot?
    var listeners: [Listener] = []
    /// Told every snapshot `apply` takes in (`Client.updates`), by listener id.
    var observers: [Int: (TaskSnapshot) -> Void] = [:]
    var journalSeq: Int64?

    /// The last snapshot, or a stand-in with the id, model and tag.
    var lastKnown: TaskSnapshot { snapshot ?? TaskSnapshot.standIn(id: id, model: model, tag: tag) }

    init(id: String, model: String, resolution: String, tag: String?, callbackMode: Bool, origin: TaskOrigin) {
        self.model = model
        self.resolution = resolution
        self.tag = tag
        super.init(id: id, key: pollKey(model: model, resolution: resolution), callbackMode: callbackMode, origin: origin)
    }
}

/// A one-off request (a status call) waiting for its token.
struct OneOffRequest {
    let send: () -> Void
    /// Runs instead of `send` when the client shuts down first.
    let drop: () -> Void
}

/// The engine's I/O shell around the scheduler: it turns the scheduler's steps into HTTP
/// requests, the answers into scheduler events and outcomes, and writes the journal.
extension Client {
    /// Tasks being tracked (polled, parked or waited for), by id.
    var tasks: [String: TrackedTask] { scheduler.tasks }

    func authHeaders() -> [String] {
        ["Authorization: Bearer \(apiKey)", "Accept: application/json"]
    }

    func makePendingSubmit(_ request: Request, callback: (Int, TaskCallback)?,
                           onAccepted: ((Result<String, ApixoError>) -> Void)?) throws -> PendingSubmit {
        let body = request.toJSON()
        let ps = PendingSubmit(request: request, body: Array(body.utf8), callback: callback, onAccepted: onAccepted)
        ps.journalSeq = try journal?.intent(model: request.model, body: body, tag: request.tag)
        return ps
    }

    // MARK: the request pump

    func enqueueSubmit(_ ps: PendingSubmit) {
        if shutDown {
            failSubmit(ps, ApixoError(.closed, "the client is closed"))
            return
        }
        scheduler.enqueue(ps)
        pump()
    }

    /// Does what the scheduler says until it says wait, and wakes up when it asks to.
    func pump() {
        if shutDown { return }
        while true {
            switch scheduler.next(now: clock.now) {
            case .submit(let ps): sendSubmit(ps)
            case .poll(let t): sendPoll(t)
            case .get(let id): oneOffs.removeValue(forKey: id)?.send()
            case .forget(let t): logger.log(.debug, "task \(t.id): nobody waits for it and it has run its course; slot released")
            case .wait(let at):
                if let at { schedulePump(at) }
                return
            }
        }
    }

    func schedulePump(_ at: Double) {
        if let t = pumpTimer, !t.cancelled, t.due <= at { return }
        pumpTimer?.cancelled = true
        pumpTimer = engine.after(at - clock.now) { [self] in
            pumpTimer = nil
            pump()
        }
    }

    // MARK: submits

    func sendSubmit(_ ps: PendingSubmit) {
        var req = HTTPRequest(method: .post, url: "\(baseURL)/generateTask/\(ps.request.model)",
                              timeoutMs: options.timeoutMs)
        req.headers = authHeaders() + ["Content-Type: application/json"]
        req.body = ps.body
        req.freshConnection = true
        // Durable before any byte of the request leaves, and not before the connection is
        // up: a crash before it leaves the intent resumable, not indeterminate.
        // The hook also tells a failure before sending (certainly not taken) from one after.
        let journal = self.journal, seq = ps.journalSeq
        req.beforeSend = { if let seq { journal?.sending(seq: seq) } }
        logger.log(.debug, "submit \(ps.request.model) (attempt \(ps.attempts))")
        startLogged(req) { [self] r in handleSubmit(ps, r) }
    }

    /// Starts a transfer and logs, at debug, its request and answer: method, the URL's path
    /// (below the base URL for API calls; without the query for downloads, whose signed
    /// query strings are not ours to log), HTTP status or curl error, duration. Never a
    /// header (the key is in one). Engine thread.
    func startLogged(_ req: HTTPRequest, _ completion: @escaping (HTTPResult) -> Void) {
        let started = monotonicSeconds()
        engine.start(req) { [self] r in
            logger.log(.debug, {
                let method = req.method == .get ? "GET" : "POST"
                var path = req.url.hasPrefix(baseURL) ? String(req.url.dropFirst(baseURL.count)) : req.url
                if !req.url.hasPrefix(baseURL), let q = path.firstIndex(of: "?") { path = String(path[..<q]) }
                let ms = Bounded.wholeMillis(monotonicSeconds() - started)
                let answer = r.aborted ? "aborted" : r.curlCode == CURLE_OK ? "HTTP \(r.status)" : "failed: \(r.curlMessage)"
                return "\(method) \(path) -> \(answer) in \(ms) ms"
            }())
            completion(r)
        }
    }

    func handleSubmit(_ ps: PendingSubmit, _ r: HTTPResult) {
        let what = "generateTask/\(ps.request.model)"
        if r.aborted {
            scheduler.submitAborted(ps, now: clock.now)
            failSubmit(ps, ApixoError(.closed, "\(what): the client closed while the submit was in flight"))
            return
        }
        if r.curlCode != CURLE_OK && !r.certainlyNotSent || r.bodyTooLarge {
            // The body went out and the answer was lost: the task may exist. Never resend.
            scheduler.submitLost(ps, now: clock.now)
            let why = r.bodyTooLarge ? "answer too large" : r.curlMessage
            failSubmit(ps, ApixoError(.indeterminate,
                                      "\(what): the request was sent but its answer was lost (\(why)); the task may exist and was not resubmitted"))
            pump()
            return
        }
        switch WireProtocol.interpret(r, what: what) {
        case .success(let data):
            guard let id = data["taskId"]?.stringValue, !id.isEmpty, (try? Client.checkTaskId(id)) != nil else {
                scheduler.submitLost(ps, now: clock.now)
                failSubmit(ps, ApixoError(.indeterminate, "\(what): the API accepted the request but its answer carries no taskId"))
                pump()
                return
            }
            accepted(ps, id)
        case .failure(let e):
            // Only a refusal that certainly created nothing may be sent again.
            let safe = r.certainlyNotSent || e.httpStatus == 429 || e.httpStatus == 503
            // A gateway that timed out or lost its upstream (502, 504) may have passed the
            // request on: the task may exist, exactly as when the answer is garbled.
            if r.curlCode == CURLE_OK, e.code == .protocol && (200...299).contains(r.status)
                || e.httpStatus == 502 || e.httpStatus == 504 {
                scheduler.submitLost(ps, now: clock.now)
                failSubmit(ps, ApixoError(.indeterminate, "\(e.message); the task may exist and was not resubmitted"))
                pump()
                return
            }
            if let wait = scheduler.submitRefused(ps, e, safe: safe, now: clock.now) {
                logger.log(.info, "\(e.message); retrying the submit in \(Bounded.wholeMillis(wait)) ms")
            } else {
                failSubmit(ps, e.beyondRetryAfterCap(scheduler.maxRetryAfter, capMs: options.maxRetryAfterMs))
            }
            pump()
        }
    }

    func failSubmit(_ ps: PendingSubmit, _ e: ApixoError) {
        logger.log(.warn, e.message)
        // A close is not an outcome: the journal keeps the intent for resume.
        let seq = e.code == .closed ? nil : ps.journalSeq
        if let seq {
            journal?.terminal(seq: seq, code: e.code, message: e.message,
                              snapshot: e.code == .indeterminate ? submitStandIn(ps) : nil)
        }
        ps.onAccepted?(.failure(e))
        if let (ticket, cb) = ps.callback {
            deliver(cb, ticket, Outcome(code: e.code, task: submitStandIn(ps), message: e.message), journalSeq: seq)
        }
    }

    /// What is known of a submit that has no task id: its model and tag.
    func submitStandIn(_ ps: PendingSubmit) -> TaskSnapshot {
        TaskSnapshot.standIn(id: "", model: ps.request.model, tag: ps.request.tag)
    }

    func accepted(_ ps: PendingSubmit, _ id: String) {
        if let seq = ps.journalSeq { journal?.accepted(seq: seq, taskId: id) }
        logger.log(.info, "task \(id) accepted")
        let t = tasks[id] ?? TrackedTask(id: id, model: ps.request.model, resolution: ps.request.resolutionKey,
                                         tag: ps.request.tag, callbackMode: ps.request.requestType == "callback",
                                         origin: .submitted)
        t.journalSeq = ps.journalSeq
        if let (lid, cb) = ps.callback { t.listeners.append(.callback(lid, cb)) }
        ps.onAccepted?(.success(id))
        scheduler.submitAccepted(ps, as: t, listening: !t.listeners.isEmpty, now: clock.now)
        pump()
    }

    // MARK: tracking

    func sendPoll(_ t: TrackedTask) {
        sendStatus(model: t.model, taskId: t.id) { [self] result in handlePoll(t, result) }
    }

    func handlePoll(_ t: TrackedTask, _ result: Result<TaskSnapshot, ApixoError>) {
        guard tasks[t.id] === t, !shutDown else { return }
        switch result {
        case .success(let snap):
            apply(t, snap, isPoll: true)
        case .failure(let e):
            if e.code == .closed { return }
            if let wait = scheduler.pollFailed(t, e, now: clock.now) {
                logger.log(.info, "\(e.message); polling \(t.id) again in \(Bounded.wholeMillis(wait)) ms")
                pump()
            } else {
                let e = e.beyondRetryAfterCap(scheduler.maxRetryAfter, capMs: options.maxRetryAfterMs)
                finish(t, Outcome(code: e.code, task: t.snapshot, message: e.message), terminal: false)
            }
        }
    }

    /// Takes in a new snapshot from a poll (`isPoll`), a status call or a webhook.
    func apply(_ t: TrackedTask, _ raw: TaskSnapshot, isPoll: Bool = false) {
        let snap = raw.with(model: t.model, tag: t.tag)
        t.snapshot = snap
        for observe in t.observers.values { observe(snap) }
        if snap.state.isTerminal {
            if snap.completeTimeMs > snap.createTimeMs, snap.createTimeMs > 0 {
                scheduler.observe(key: t.key, duration: Double(snap.completeTimeMs - snap.createTimeMs) / 1000)
            }
            let ok = snap.state == .success
            let msg = ok ? "" : "task \(t.id) failed: \(snap.failCode ?? "UNKNOWN"): \(snap.failMessage ?? "")"
            finish(t, Outcome(code: ok ? .ok : .taskFailed, task: snap, message: msg), terminal: true)
            return
        }
        // How long the server says it has existed (a watched task's age).
        let age = snap.createTimeMs > 0 ? Double(wallMillis() - snap.createTimeMs) / 1000 : nil
        scheduler.running(t, serverAge: age, isPoll: isPoll, now: clock.now)
        pump()
    }

    /// Ends tracking of a task and notifies every listener once. Without any status the
    /// listeners get a stand-in with the id, model and tag.
    func finish(_ t: TrackedTask, _ outcome: Outcome, terminal: Bool) {
        let o = outcome.task != nil ? outcome
            : Outcome(code: outcome.code, task: t.lastKnown,
                      message: outcome.message)
        scheduler.finish(t, terminal: terminal, now: clock.now)
        if terminal, let snap = o.task { remember(snap) }
        if let seq = t.journalSeq {
            journal?.terminal(seq: seq, code: o.code, message: o.message, snapshot: o.task)
        }
        let listeners = t.listeners
        t.listeners.removeAll()
        var callbacks = 0
        for l in listeners {
            switch l {
            case .callback(let ticket, let cb):
                callbacks += 1
                deliver(cb, ticket, o, journalSeq: t.journalSeq)
            case .waiter(_, let w): w.fulfill(o)
            }
        }
        // A blocking call handed the outcome over; a callback records its own delivery.
        if callbacks == 0, !listeners.isEmpty, let seq = t.journalSeq { journal?.delivered(seq: seq) }
        pump()
    }

    func remember(_ snap: TaskSnapshot) {
        if recentDone.updateValue(snap, forKey: snap.id) == nil { recentOrder.append(snap.id) }
        if recentOrder.count > 4096 {
            for id in recentOrder.prefix(1024) { recentDone[id] = nil }
            recentOrder.removeFirst(1024)
        }
    }

    /// `holdsSlot`: the task is known to have been submitted by this account and may still
    /// run (a journal entry from an earlier run), so it counts toward the concurrency cap.
    func addListener(taskId: String, model: String, tag: String?, _ l: Listener, journalSeq: Int64?,
                     holdsSlot: Bool = false, resolution: String = "2K") {
        if shutDown {
            notify(l, Outcome(code: .closed, task: nil, message: "the client is closed"), journalSeq: journalSeq)
            return
        }
        if let t = tasks[taskId] {
            if t.model != model {
                notify(l, Outcome(code: .notFound, task: nil, message: "task \(taskId) is tracked under model \(t.model), not \(model)"),
                       journalSeq: journalSeq)
                return
            }
            t.listeners.append(l)
            if t.journalSeq == nil { t.journalSeq = journalSeq }
            scheduler.setListening(t, true, now: clock.now)
            pump()
            return
        }
        if let snap = recentDone[taskId], snap.model == nil || snap.model == model {
            let ok = snap.state == .success
            notify(l, Outcome(code: ok ? .ok : .taskFailed, task: snap,
                              message: ok ? "" : "task \(taskId) failed: \(snap.failCode ?? "UNKNOWN"): \(snap.failMessage ?? "")"),
                   journalSeq: journalSeq)
            return
        }
        let t = TrackedTask(id: taskId, model: model, resolution: resolution, tag: tag, callbackMode: false,
                            origin: holdsSlot ? .resumed : .watched)
        t.journalSeq = journalSeq
        t.listeners.append(l)
        scheduler.track(t, listening: true, claimSlot: holdsSlot, now: clock.now)
        pump()
    }

    func notify(_ l: Listener, _ o: Outcome, journalSeq: Int64?) {
        if let journalSeq { journal?.terminal(seq: journalSeq, code: o.code, message: o.message, snapshot: o.task) }
        switch l {
        case .callback(let ticket, let cb): deliver(cb, ticket, o, journalSeq: journalSeq)
        case .waiter(_, let w): w.fulfill(o)
        }
    }

    /// Ends one blocking or `async` wait (`.timeout`, or `.cancelled` for a cancelled Swift task).
    func timeOutWaiter(taskId: String, id: Int, _ w: Waiter<Outcome>, code: ApixoCode = .timeout) {
        let t = tasks[taskId]
        w.fulfill(Outcome(code: code, task: t?.snapshot,
                          message: code == .timeout ? "timed out waiting for task \(taskId)"
                              : "waiting for task \(taskId) was cancelled (the task goes on on the server)"))
        guard let t else { return }
        t.listeners.removeAll { if case .waiter(let i, _) = $0 { return i == id } else { return false } }
        // Nobody waits any more: parked while it holds a slot, else no longer tracked.
        if t.listeners.isEmpty { scheduler.setListening(t, false, now: clock.now) }
        pump()
    }

    /// Fires the task's callbacks with `.cancelled`; blocking waits on it go on.
    func cancelOnEngine(taskId: String) -> Bool {
        guard let t = tasks[taskId] else { return false }
        var callbacks: [(Int, TaskCallback)] = []
        t.listeners.removeAll { l in
            if case .callback(let ticket, let cb) = l {
                callbacks.append((ticket, cb))
                return true
            }
            return false
        }
        guard !callbacks.isEmpty else { return false }
        let snap = t.lastKnown
        let o = Outcome(code: .cancelled, task: snap, message: "tracking of task \(taskId) was cancelled")
        if let seq = t.journalSeq { journal?.terminal(seq: seq, code: .cancelled, message: o.message, snapshot: t.snapshot) }
        for (ticket, cb) in callbacks { deliver(cb, ticket, o, journalSeq: t.journalSeq) }
        // No listeners: parked, keeping its slot while it would run.
        if t.listeners.isEmpty { scheduler.setListening(t, false, now: clock.now) }
        pump()
        return true
    }

    // MARK: status requests

    /// One GET of the status endpoint (one attempt); engine thread.
    func sendStatus(model: String, taskId: String, completion: @escaping (Result<TaskSnapshot, ApixoError>) -> Void) {
        let req = HTTPRequest(method: .get,
                              url: "\(baseURL)/statusTask/\(model)?taskId=\(Client.percentEncode(taskId))",
                              headers: authHeaders(), timeoutMs: options.timeoutMs)
        startLogged(req) { r in
            let what = "statusTask/\(model)"
            switch WireProtocol.interpret(r, what: what) {
            case .failure(let e): completion(.failure(e))
            case .success(let data):
                do {
                    let snap = try TaskSnapshot.parse(data: data, model: model, tag: nil)
                    if snap.id != taskId {
                        var e = ApixoError(.protocol, "\(what): answer is about task \(snap.id), not \(taskId)")
                        e.retryable = true
                        completion(.failure(e))
                    } else {
                        completion(.success(snap))
                    }
                } catch var e as ApixoError {
                    e.retryable = true
                    completion(.failure(e))
                } catch {
                    completion(.failure(ApixoError(.protocol, "\(what): \(error)")))
                }
            }
        }
    }

    /// A status request through the budget, retried on transient errors; feeds tracked tasks.
    func fetchStatus(model: String, taskId: String, attempt: Int,
                     completion: @escaping (Result<TaskSnapshot, ApixoError>) -> Void) {
        if shutDown {
            completion(.failure(ApixoError(.closed, "the client is closed")))
            return
        }
        let id = scheduler.enqueueGet()
        oneOffs[id] = OneOffRequest(send: { [self] in
            sendStatus(model: model, taskId: taskId) { [self] result in
                switch result {
                case .success(let snap):
                    if let t = tasks[taskId], t.model == model { apply(t, snap) }
                    completion(.success(snap.with(model: model, tag: tasks[taskId]?.tag)))
                case .failure(let e):
                    if e.retryable, attempt < options.maxRetries, !shutDown,
                       let wait = scheduler.retryWait(e, attempt: attempt, now: clock.now) {
                        // A shutdown drops the timer: the caller then gets `.closed` at once.
                        engine.after(wait, orOnStop: { completion(.failure(ApixoError(.closed, "the client is closed"))) }) { [self] in
                            fetchStatus(model: model, taskId: taskId, attempt: attempt + 1, completion: completion)
                        }
                    } else {
                        completion(.failure(e.beyondRetryAfterCap(scheduler.maxRetryAfter, capMs: options.maxRetryAfterMs)))
                    }
                }
            }
        }, drop: { completion(.failure(ApixoError(.closed, "the client is closed"))) })
        pump()
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case 48...57, 65...90, 97...122, UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    // MARK: shutdown

    func shutdownOnEngine() {
        shutDown = true
        pumpTimer?.cancelled = true
        pumpTimer = nil  // its closure holds the client
        let (queued, all, gets) = scheduler.shutdown(now: clock.now)
        for ps in queued { failSubmit(ps, ApixoError(.closed, "the client was closed before the submit was sent")) }
        for t in all {
            let listeners = t.listeners
            t.listeners.removeAll()
            for l in listeners {
                let o = Outcome(code: .closed, task: t.lastKnown, message: "the client was closed")
                switch l {
                case .callback(let ticket, let cb): deliver(cb, ticket, o, journalSeq: nil)
                case .waiter(_, let w): w.fulfill(o)
                }
            }
        }
        for id in gets { oneOffs.removeValue(forKey: id)?.drop() }
        oneOffs.removeAll()
        engine.abortAll()
    }
}
