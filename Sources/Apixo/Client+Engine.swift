import CCurl

/// Who is waiting for a tracked task.
enum Listener {
    /// A callback and its drain ticket (`Client.register`).
    case callback(Int, TaskCallback)
    case waiter(Int, Waiter<Outcome>)
}

/// A submit waiting for a concurrency slot and a request token.
final class PendingSubmit {
    let request: Request
    let body: [UInt8]
    let callback: (Int, TaskCallback)?
    let onAccepted: ((Result<String, ApixoError>) -> Void)?
    var journalSeq: Int64?
    var attempts = 0
    var notBefore: Double = 0

    init(request: Request, body: [UInt8], callback: (Int, TaskCallback)?,
         onAccepted: ((Result<String, ApixoError>) -> Void)?) {
        self.request = request
        self.body = body
        self.callback = callback
        self.onAccepted = onAccepted
    }
}

/// A GET waiting for a request token, due at `due`.
final class Outgoing {
    let due: Double
    let seq: UInt64
    private(set) var send: (() -> Void)?
    /// Runs instead of `send` when the client shuts down first.
    private(set) var drop: (() -> Void)?
    /// Cancelling (or sending) drops both closures, which hold the task and the client.
    var cancelled = false {
        didSet {
            if cancelled {
                send = nil
                drop = nil
            }
        }
    }

    init(due: Double, seq: UInt64, send: @escaping () -> Void, drop: (() -> Void)? = nil) {
        self.due = due
        self.seq = seq
        self.send = send
        self.drop = drop
    }
}

/// A task the engine knows about. Engine thread only.
final class TrackedTask {
    let id: String
    let model: String
    let resolution: String
    var tag: String?
    let callbackMode: Bool
    /// Submitted by this client (so its latency teaches the planner).
    let ours: Bool
    var snapshot: TaskSnapshot?
    var listeners: [Listener] = []
    var holdsSlot = false
    var slotTimer: TimerToken?
    var poll: Outgoing?
    var pollInFlight = false
    var polls = 0
    var failures = 0
    var overdue = false
    /// When a parked task's poll was due, so that re-activating it does not postpone the poll.
    var parkedPollDue: Double?
    var startedAt: Double
    var journalSeq: Int64?

    /// The last snapshot, or a stand-in with the id, model and tag.
    var lastKnown: TaskSnapshot { snapshot ?? TaskSnapshot.standIn(id: id, model: model, tag: tag) }

    init(id: String, model: String, resolution: String, tag: String?, callbackMode: Bool, ours: Bool, startedAt: Double) {
        self.id = id
        self.model = model
        self.resolution = resolution
        self.tag = tag
        self.callbackMode = callbackMode
        self.ours = ours
        self.startedAt = startedAt
    }
}

extension Client {
    var maxTasks: Int { options.maxConcurrentTasks }
    var slotFree: Bool { maxTasks == 0 || slotsUsed < maxTasks }

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

    func enqueueSubmit(_ ps: PendingSubmit, front: Bool = false) {
        if shutDown {
            failSubmit(ps, ApixoError(.closed, "the client is closed"))
            return
        }
        if front { submitQueue.insert(ps, at: 0) } else { submitQueue.append(ps) }
        pump()
    }

    /// Queues a GET. The caller pumps once it has stored the handle: a GET due now is sent
    /// by that pump, and its completion may already need the handle.
    func enqueueGet(after delay: Double, drop: (() -> Void)? = nil, _ send: @escaping () -> Void) -> Outgoing {
        outgoingSeq += 1
        let o = Outgoing(due: clock.now + delay, seq: outgoingSeq, send: send, drop: drop)
        getQueue.push(o)
        return o
    }

    /// Sends whatever the budget allows now and schedules itself for the next opportunity.
    func pump() {
        if shutDown { return }
        while true {
            while let g = getQueue.first, g.cancelled { getQueue.pop() }
            let now = clock.now
            let ready = limiter.nextAvailable(now)
            var submitAt: Double?
            if slotFree, let s = submitQueue.first { submitAt = max(ready, s.notBefore) }
            var getAt: Double?
            if let g = getQueue.first { getAt = max(ready, g.due) }
            let at: Double
            switch (submitAt, getAt) {
            case (nil, nil): return
            case (let s?, nil): at = s
            case (nil, let g?): at = g
            case (let s?, let g?): at = min(s, g)
            }
            if at > now {
                schedulePump(at)
                return
            }
            limiter.record(now)
            if let s = submitAt, s <= now {
                sendSubmit(submitQueue.removeFirst())
            } else if let g = getQueue.pop(), let send = g.send {
                g.cancelled = true  // sent: release the closures
                send()
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
        ps.attempts += 1
        slotsUsed += 1
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
        engine.start(req) { [self] r in handleSubmit(ps, r) }
    }

    func handleSubmit(_ ps: PendingSubmit, _ r: HTTPResult) {
        let what = "generateTask/\(ps.request.model)"
        if r.aborted {
            slotsUsed -= 1
            failSubmit(ps, ApixoError(.closed, "\(what): the client closed while the submit was in flight"))
            return
        }
        if r.curlCode != CURLE_OK && !r.certainlyNotSent || r.bodyTooLarge {
            // The body went out and the answer was lost: the task may exist. Never resend.
            holdSlotForUnknownTask(model: ps.request.model, resolution: ps.request.resolutionKey)
            let why = r.bodyTooLarge ? "answer too large" : r.curlMessage
            failSubmit(ps, ApixoError(.indeterminate,
                                      "\(what): the request was sent but its answer was lost (\(why)); the task may exist and was not resubmitted"))
            return
        }
        switch WireProtocol.interpret(r, what: what) {
        case .success(let data):
            guard let id = data["taskId"]?.stringValue, !id.isEmpty, (try? Client.checkTaskId(id)) != nil else {
                holdSlotForUnknownTask(model: ps.request.model, resolution: ps.request.resolutionKey)
                failSubmit(ps, ApixoError(.indeterminate, "\(what): the API accepted the request but its answer carries no taskId"))
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
                holdSlotForUnknownTask(model: ps.request.model, resolution: ps.request.resolutionKey)
                failSubmit(ps, ApixoError(.indeterminate, "\(e.message); the task may exist and was not resubmitted"))
                return
            }
            slotsUsed -= 1
            if safe, ps.attempts <= options.maxRetries {
                let wait = backOff(e, attempt: ps.attempts - 1)
                logger.log(.info, "\(e.message); retrying the submit in \(Int(wait * 1000)) ms")
                ps.notBefore = clock.now + wait
                enqueueSubmit(ps, front: true)  // its pump schedules itself for notBefore
                return
            }
            failSubmit(ps, e)
            pump()
        }
    }

    /// The wait before retry `attempt` (0-based) after `e`: backoff with jitter, or the
    /// server's Retry-After when longer. A 429 also pauses every request of the client.
    func backOff(_ e: ApixoError, attempt: Int) -> Double {
        let wait = retryDelay(e, attempt: attempt)
        if e.httpStatus == 429 { limiter.pause(until: clock.now + (e.retryAfter ?? wait)) }
        return wait
    }

    /// A submit that may have created a task keeps its slot for as long as such a task would run.
    func holdSlotForUnknownTask(model: String, resolution: String) {
        let d = planner.assumedRemaining(model: model, resolution: resolution, elapsed: 0)
        engine.after(d) { [self] in
            slotsUsed -= 1
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
                                         ours: true, startedAt: clock.now)
        t.holdsSlot = true
        t.journalSeq = ps.journalSeq
        tasks[id] = t
        if let (lid, cb) = ps.callback { t.listeners.append(.callback(lid, cb)) }
        ps.onAccepted?(.success(id))
        activate(t)
        pump()
    }

    // MARK: tracking

    /// Polls a task that has listeners; parks one that has none (its slot is then released
    /// when such a task would have finished).
    func activate(_ t: TrackedTask) {
        if t.listeners.isEmpty {
            if let p = t.poll {
                p.cancelled = true
                t.parkedPollDue = p.due
            }
            t.poll = nil
            if t.holdsSlot, t.slotTimer == nil {
                let d = planner.assumedRemaining(model: t.model, resolution: t.resolution, elapsed: clock.now - t.startedAt)
                t.slotTimer = engine.after(d) { [self] in
                    t.slotTimer = nil
                    releaseSlot(t)
                    if t.listeners.isEmpty, tasks[t.id] === t { tasks[t.id] = nil }
                }
            }
            return
        }
        t.slotTimer?.cancelled = true
        t.slotTimer = nil
        guard t.poll == nil, !t.pollInFlight else { return }
        let delay: Double
        if let due = t.parkedPollDue {
            t.parkedPollDue = nil
            delay = max(0, due - clock.now)
        } else if t.ours && t.polls == 0 {
            delay = planner.firstPollDelay(model: t.model, resolution: t.resolution,
                                           elapsed: clock.now - t.startedAt, callbackMode: t.callbackMode)
        } else if t.polls == 0 {
            delay = 0
        } else {
            delay = nextPollDelay(t)
        }
        schedulePoll(t, after: delay)
    }

    func nextPollDelay(_ t: TrackedTask) -> Double {
        if !t.ours, t.polls == 1, let s = t.snapshot, s.createTimeMs > 0 {
            // A task we did not submit: its server createTime tells how long it has run.
            let elapsed = Double(wallMillis() - s.createTimeMs) / 1000
            return planner.firstPollDelay(model: t.model, resolution: t.resolution, elapsed: elapsed, callbackMode: t.callbackMode)
        }
        return planner.nextPollDelay(overdueTasks: overdueTasks, requestsPerWindow: options.requestsPerMinute,
                                     window: limiter.window, callbackMode: t.callbackMode)
    }

    func schedulePoll(_ t: TrackedTask, after delay: Double) {
        t.poll?.cancelled = true
        t.poll = enqueueGet(after: delay) { [self] in
            t.poll = nil
            t.pollInFlight = true
            sendStatus(model: t.model, taskId: t.id) { [self] result in
                t.pollInFlight = false
                handlePoll(t, result)
            }
        }
        pump()
    }

    func releaseSlot(_ t: TrackedTask) {
        guard t.holdsSlot else { return }
        t.holdsSlot = false
        slotsUsed -= 1
        pump()
    }

    func handlePoll(_ t: TrackedTask, _ result: Result<TaskSnapshot, ApixoError>) {
        guard tasks[t.id] === t, !shutDown else { return }
        switch result {
        case .success(let snap):
            t.failures = 0
            t.polls += 1
            apply(t, snap)
        case .failure(let e):
            if e.code == .closed { return }
            t.failures += 1
            if e.retryable && t.failures <= options.maxRetries {
                let wait = backOff(e, attempt: t.failures - 1)
                logger.log(.info, "\(e.message); polling \(t.id) again in \(Int(wait * 1000)) ms")
                if !t.listeners.isEmpty { schedulePoll(t, after: wait) }
            } else {
                finish(t, Outcome(code: e.code, task: t.snapshot, message: e.message), terminal: false)
            }
        }
    }

    /// Takes in a new snapshot from a poll, a status call or a webhook.
    func apply(_ t: TrackedTask, _ raw: TaskSnapshot) {
        let snap = raw.with(model: t.model, tag: t.tag)
        t.snapshot = snap
        if snap.state.isTerminal {
            if t.ours, snap.completeTimeMs > snap.createTimeMs, snap.createTimeMs > 0 {
                planner.observe(model: t.model, resolution: t.resolution,
                                latency: Double(snap.completeTimeMs - snap.createTimeMs) / 1000)
            }
            let ok = snap.state == .success
            let msg = ok ? "" : "task \(t.id) failed: \(snap.failCode ?? "UNKNOWN"): \(snap.failMessage ?? "")"
            finish(t, Outcome(code: ok ? .ok : .taskFailed, task: snap, message: msg), terminal: true)
            return
        }
        if t.polls >= 1 && !t.overdue && t.ours {
            t.overdue = true
            overdueTasks += 1
        }
        if !t.listeners.isEmpty, t.poll == nil, !t.pollInFlight {
            schedulePoll(t, after: nextPollDelay(t))
        }
    }

    /// Ends tracking of a task and notifies every listener once. Without any status the
    /// listeners get a stand-in with the id, model and tag.
    func finish(_ t: TrackedTask, _ outcome: Outcome, terminal: Bool) {
        let o = outcome.task != nil ? outcome
            : Outcome(code: outcome.code, task: t.lastKnown,
                      message: outcome.message)
        if tasks[t.id] === t { tasks[t.id] = nil }
        t.poll?.cancelled = true
        t.poll = nil
        t.slotTimer?.cancelled = true
        t.slotTimer = nil
        if t.overdue {
            t.overdue = false
            overdueTasks -= 1
        }
        if terminal {
            remember(o.task!)
            releaseSlot(t)
        } else if t.holdsSlot {
            // The task may still run on the server: keep its slot as long as it would.
            t.holdsSlot = false
            holdSlotForUnknownTask(model: t.model, resolution: t.resolution)
        }
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
                     holdsSlot: Bool = false) {
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
            activate(t)
            return
        }
        if let snap = recentDone[taskId], snap.model == nil || snap.model == model {
            let ok = snap.state == .success
            notify(l, Outcome(code: ok ? .ok : .taskFailed, task: snap,
                              message: ok ? "" : "task \(taskId) failed: \(snap.failCode ?? "UNKNOWN"): \(snap.failMessage ?? "")"),
                   journalSeq: journalSeq)
            return
        }
        let t = TrackedTask(id: taskId, model: model, resolution: "2K", tag: tag, callbackMode: false, ours: false,
                            startedAt: clock.now)
        t.journalSeq = journalSeq
        t.listeners.append(l)
        if holdsSlot {
            t.holdsSlot = true
            slotsUsed += 1
        }
        tasks[taskId] = t
        activate(t)
    }

    func notify(_ l: Listener, _ o: Outcome, journalSeq: Int64?) {
        if let journalSeq { journal?.terminal(seq: journalSeq, code: o.code, message: o.message, snapshot: o.task) }
        switch l {
        case .callback(let ticket, let cb): deliver(cb, ticket, o, journalSeq: journalSeq)
        case .waiter(_, let w): w.fulfill(o)
        }
    }

    func timeOutWaiter(taskId: String, id: Int, _ w: Waiter<Outcome>) {
        let t = tasks[taskId]
        w.fulfill(Outcome(code: .timeout, task: t?.snapshot, message: "timed out waiting for task \(taskId)"))
        guard let t else { return }
        t.listeners.removeAll { if case .waiter(let i, _) = $0 { return i == id } else { return false } }
        if t.listeners.isEmpty {
            if t.holdsSlot { activate(t) } else {
                t.poll?.cancelled = true
                if t.overdue {
                    t.overdue = false
                    overdueTasks -= 1
                }
                tasks[taskId] = nil
            }
        }
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
        if t.listeners.isEmpty {
            if t.overdue {
                t.overdue = false
                overdueTasks -= 1
            }
            activate(t)  // no listeners: parks it, keeping its slot while it would run
            if !t.holdsSlot { tasks[taskId] = nil }
        }
        return true
    }

    // MARK: status requests

    /// One GET of the status endpoint (one attempt); engine thread.
    func sendStatus(model: String, taskId: String, completion: @escaping (Result<TaskSnapshot, ApixoError>) -> Void) {
        let req = HTTPRequest(method: .get,
                              url: "\(baseURL)/statusTask/\(model)?taskId=\(Client.percentEncode(taskId))",
                              headers: authHeaders(), timeoutMs: options.timeoutMs)
        engine.start(req) { r in
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
        defer { pump() }
        _ = enqueueGet(after: 0, drop: { completion(.failure(ApixoError(.closed, "the client is closed"))) }) { [self] in
            sendStatus(model: model, taskId: taskId) { [self] result in
                switch result {
                case .success(let snap):
                    if let t = tasks[taskId], t.model == model { apply(t, snap) }
                    completion(.success(snap.with(model: model, tag: tasks[taskId]?.tag)))
                case .failure(let e):
                    if e.retryable, attempt < options.maxRetries, !shutDown {
                        let wait = backOff(e, attempt: attempt)
                        engine.after(wait) { [self] in fetchStatus(model: model, taskId: taskId, attempt: attempt + 1, completion: completion) }
                    } else {
                        completion(.failure(e))
                    }
                }
            }
        }
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
        let closed = Outcome(code: .closed, task: nil, message: "the client was closed")
        let queued = submitQueue
        submitQueue.removeAll()
        for ps in queued { failSubmit(ps, ApixoError(.closed, "the client was closed before the submit was sent")) }
        let all = Array(tasks.values)
        tasks.removeAll()
        for t in all {
            let listeners = t.listeners
            t.listeners.removeAll()
            for l in listeners {
                let o = Outcome(code: .closed, task: t.lastKnown,
                                message: closed.message)
                switch l {
                case .callback(let ticket, let cb): deliver(cb, ticket, o, journalSeq: nil)
                case .waiter(_, let w): w.fulfill(o)
                }
            }
        }
        while let g = getQueue.pop() {
            if g.cancelled { continue }
            let drop = g.drop
            g.cancelled = true
            drop?()
        }
        for t in all {
            t.poll?.cancelled = true
            t.poll = nil
            t.slotTimer?.cancelled = true
            t.slotTimer = nil
        }
        engine.abortAll()
    }
}
