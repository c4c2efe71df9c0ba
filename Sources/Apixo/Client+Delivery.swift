import Glibc

/// The queue delivery mode's side of the client: the host empties the queue on its own thread.
extension Client {
    /// Stands in for a nil callback inside the engine's bookkeeping; never run (the
    /// registration says there is no callback).
    static let noCallback: TaskCallback = { _, _, _ in }

    /// A nil callback is only meaningful when the host can take completions from the queue.
    func checkCallback(_ callback: TaskCallback?) throws {
        if callback == nil, options.delivery != .queue {
            throw ApixoError(.invalidArgument, "cb must not be NULL unless the delivery mode is APIXO_DELIVERY_QUEUE")
        }
    }

    /// How this client delivers callbacks and log lines.
    public var deliveryMode: DeliveryMode { options.delivery }

    /// The descriptor that is readable while an event waits (queue mode; nil in thread mode).
    /// Owned by the client: never read, write or close it; valid until the client is gone.
    /// nil in a forked child: the descriptor is the parent's (reading it would take its wakeups).
    public var eventFD: Int32? { inForkedChild ? nil : (delivery as? EventQueue)?.fd }

    /// Log lines dropped because the queue already held its bound of them (queue mode; 0 otherwise,
    /// and in a forked child).
    public var logDropped: UInt64 { inForkedChild ? 0 : (delivery as? EventQueue)?.dropped ?? 0 }

    private func eventQueue(_ what: String) throws -> EventQueue {
        try checkOpen()
        guard let q = delivery as? EventQueue else {
            throw ApixoError(.invalidArgument, "\(what) needs the queue delivery mode (APIXO_DELIVERY_QUEUE)")
        }
        return q
    }

    static func deadline(_ timeoutMs: Int) -> Double? {
        timeoutMs < 0 ? nil : timeoutMs == 0 ? 0 : monotonicSeconds() + Double(timeoutMs) / 1000
    }

    /// Runs up to `max` waiting events on the calling thread: a completion runs its callback
    /// (a completion without one is consumed: delivered, nobody told), a log line calls the
    /// logger. Waits up to `timeoutMs` for the first (0: no wait; < 0: no deadline).
    /// - Returns: how many events were handled (0 when none came in time).
    /// - Throws: `.invalidArgument` in thread mode, for `max` < 1 or from inside a callback;
    ///   `.closed` once the client is closing.
    public func dispatch(max: Int, timeoutMs: Int) throws -> Int {
        let q = try eventQueue("dispatch")
        guard max >= 1 else { throw ApixoError(.invalidArgument, "max_events must be at least 1") }
        if q.isDeliveryThread { throw ApixoError(.invalidArgument, "dispatch must not be called from a callback") }
        return try q.dispatch(max: max, until: Client.deadline(timeoutMs))
    }

    /// Takes the next waiting event without running any callback; a completion counts as
    /// delivered (journal) once handed over. Waits up to `timeoutMs` (0: no wait; < 0: no deadline).
    /// - Throws: `.timeout` when none came in time; `.invalidArgument` in thread mode;
    ///   `.closed` once the client is closing.
    public func nextEvent(timeoutMs: Int) throws -> Event {
        let q = try eventQueue("next_event")
        switch q.next(until: Client.deadline(timeoutMs)) {
        case .item(.completion(let c)): return .completion(c.outcome, userData: c.userData)
        case .item(.log(let level, let message, _)): return .log(level, message)
        case .timeout: throw ApixoError(.timeout, "no event within \(timeoutMs) ms")
        case .closed: throw ApixoError(.closed, "the client is closed")
        }
    }

    /// Drain in the queue mode: returns once every completion registered before the call has
    /// been run (its callback returned), taken by `nextEvent`, or, when it has no callback,
    /// waits in the queue. Meanwhile it runs waiting callbacks on the calling thread, in
    /// order; log lines and completions without a callback keep their places in the queue.
    func drainQueue(_ q: EventQueue, until deadline: Double?) throws {
        let waiting = ledger.beginDrain()
        defer { ledger.endDrain(waiting) }
        while true {
            if isClosing { throw ApixoError(.closed, "the client is closed") }
            let seen = q.generation
            if q.runOneCallback() { continue }
            let left = ledger.left(waiting)
            if left == 0 { return }
            if !q.waitForChange(since: seen, until: deadline) {
                if let deadline, deadline <= monotonicSeconds() {
                    throw ApixoError(.timeout, "\(left) callbacks still pending")
                }
            }
        }
    }
}
