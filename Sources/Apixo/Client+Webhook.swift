extension Client {
    /// Takes one webhook delivery (the raw POST body): completes the tracked task once.
    /// - Returns: the snapshot from the delivery (with model and tag when tracked). A repeat of
    ///   a delivery already taken returns normally and fires nothing.
    /// - Throws: `.protocol` for a malformed body; `.notFound` (with `task` set) for a task
    ///   this client does not know.
    public func ingestWebhook(_ body: [UInt8]) throws -> TaskSnapshot {
        try checkOpen()
        let snap = try Client.parseWebhook(body)
        let w = Waiter<Result<TaskSnapshot, ApixoError>>()
        try onEngine { [self] in
            logger.log(.debug, "webhook for task \(snap.id): \(snap.state.name)")
            if let t = tasks[snap.id] {
                apply(t, snap)
                w.fulfill(.success(snap.with(model: t.model, tag: t.tag)))
            } else if let done = recentDone[snap.id] {
                w.fulfill(.success(done))
            } else {
                w.fulfill(.failure(ApixoError(.notFound, "webhook for task \(snap.id), which this client does not track", task: snap)))
            }
        }
        return try w.wait(until: nil)!.get()
    }

    static func parseWebhook(_ body: [UInt8]) throws -> TaskSnapshot {
        guard body.count <= 4 << 20 else { throw ApixoError(.protocol, "webhook body larger than 4 MiB") }
        let json: JSON
        do { json = try JSON.parse(body) } catch let e as JSONParseError {
            throw ApixoError(.protocol, "webhook body is not JSON: \(e.message)")
        }
        guard let o = json.objectValue else { throw ApixoError(.protocol, "webhook body is not a JSON object") }
        // The documented envelope, or a bare status object.
        let data: JSON
        if let d = o["data"], d.objectValue != nil, o["taskId"] == nil { data = d } else { data = json }
        return try TaskSnapshot.parse(data: data, model: nil, tag: nil)
    }

    /// Re-tracks what the journal knows from earlier runs; `callback` fires once per task.
    /// Tasks with an id are polled until terminal; a submit that was sent but never answered
    /// is reported as `.indeterminate` (id "", the caller's tag); a submit never sent is sent now.
    /// `callback` and `userData` as for `submitAsync` (nil only in the queue delivery mode).
    /// - Returns: what was taken up, so a host can tell its own work items (by tag) apart.
    @discardableResult
    public func resume(userData: UInt = 0, callback: TaskCallback?) throws -> [ResumedTask] {
        try checkOpen()
        try checkCallback(callback)
        guard let journal else { throw ApixoError(.invalidArgument, "resume needs a journal (apixo_options_set_journal)") }
        let hasCallback = callback != nil
        let callback = callback ?? Client.noCallback
        let entries = journal.takeLeftover()
        for e in entries {
            let ticket = ledger.register(userData: userData, hasCallback: hasCallback)
            if let code = e.terminalCode, code != .closed {
                // The outcome is known; only its delivery was lost.
                let snap = e.snapshotJSON.flatMap { try? JSON.parse($0) }.flatMap {
                    try? TaskSnapshot.parse(data: $0, model: e.model, tag: e.tag)
                } ?? TaskSnapshot.standIn(id: e.taskId ?? "", model: e.model, tag: e.tag)
                deliver(callback, ticket, Outcome(code: code, task: snap, message: e.terminalMessage ?? ""), journalSeq: e.seq)
            } else if let id = e.taskId {
                let resolution = Client.resolution(ofBody: e.body)
                let posted = engine.post { [self] in
                    addListener(taskId: id, model: e.model, tag: e.tag, .callback(ticket, callback), journalSeq: e.seq,
                                holdsSlot: e.kind == "intent", resolution: resolution)
                    if let t = tasks[id], t.tag == nil { t.tag = e.tag }
                }
                if !posted { ledger.fired(ticket) }  // closed meanwhile: the journal keeps it
            } else if e.sending || e.body == nil {
                let msg = "a submit was sent before a crash and its answer was lost; the task may exist and was not resubmitted"
                journal.terminal(seq: e.seq, code: .indeterminate, message: msg, snapshot: nil)
                // Such a task may be running on the server: count it against the cap for as long.
                let key = pollKey(model: e.model, resolution: Client.resolution(ofBody: e.body))
                engine.post { [self] in
                    scheduler.holdForUnknownTask(key: key, now: clock.now)
                    pump()
                }
                deliver(callback, ticket, Outcome(code: .indeterminate, task: TaskSnapshot.standIn(id: "", model: e.model, tag: e.tag),
                                          message: msg), journalSeq: e.seq)
            } else {
                // Never sent: send it now.
                guard let body = try? JSON.parse(e.body!),
                      let req = try? Request.fromBody(model: e.model, body: body, tag: e.tag) else {
                    let msg = "the journalled request could not be read back; it was never sent"
                    journal.terminal(seq: e.seq, code: .protocol, message: msg, snapshot: nil)
                    deliver(callback, ticket, Outcome(code: .protocol, task: TaskSnapshot.standIn(id: "", model: e.model, tag: e.tag),
                                              message: msg), journalSeq: e.seq)
                    continue
                }
                let ps = PendingSubmit(request: req, body: Array(e.body!.utf8), callback: (ticket, callback), onAccepted: nil)
                ps.journalSeq = e.seq
                if !engine.post({ [self] in enqueueSubmit(ps) }) { ledger.fired(ticket) }
            }
        }
        return entries.map { ResumedTask(model: $0.model, taskId: $0.taskId, tag: $0.tag) }
    }

    /// The resolution a journalled request body asks for ("2K" when it says none).
    static func resolution(ofBody body: String?) -> String {
        body.flatMap { try? JSON.parse($0) }?["input"]?["resolution"]?.stringValue ?? "2K"
    }

    /// The expected seconds from submit to completion for a model and resolution, as the
    /// client has learned it (the documented range before any observation), real time.
    public func expectedSeconds(model: String, resolution: String) -> Double {
        if inForkedChild { return scheduler.policy.expectedDuration(key: pollKey(model: model, resolution: resolution)) }
        let w = Waiter<Double>()
        engine.post { [self] in w.fulfill(scheduler.policy.expectedDuration(key: pollKey(model: model, resolution: resolution))) }
        return w.wait(until: monotonicSeconds() + 5) ?? options.timeScale * 30
    }
}

/// One journal entry that `resume` took up.
public struct ResumedTask: Sendable {
    public let model: String
    /// nil when the submit was never answered (or never sent).
    public let taskId: String?
    public let tag: String?
}
