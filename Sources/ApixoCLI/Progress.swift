import Apixo
import Glibc

/// Waits for one task while showing its progress: on a terminal a live line (state, elapsed,
/// expected remaining time), otherwise one plain line per state change.
///
/// Waiting is a loop of short `wait` calls; the polls themselves are scheduled by the library,
/// so redrawing adds no requests. A `watch` keeps the task tracked between those calls.
struct ProgressWait {
    let client: Client
    let console: Console
    let model: String
    let taskId: String
    /// For the expected generation time ("2K" when unknown).
    var resolution: String?
    /// Monotonic time the task was submitted by us; nil for a task submitted elsewhere.
    var submittedAt: Double?
    /// Monotonic deadline, or nil.
    var deadline: Double?

    /// - Returns: the successful task.
    /// - Throws: `ApixoError` (.taskFailed with the task, .notFound, ...) or `CLIFailure`
    ///   for a timeout or an interruption.
    func run() throws -> TaskSnapshot {
        let started = monotonicSeconds()
        let expected = client.expectedSeconds(model: model, resolution: resolution ?? "2K")
        try client.watch(model: model, taskId: taskId) { _, _, _ in }
        var last: TaskSnapshot?
        var shownState: String?
        var waited = false
        while true {
            if Signals.received != 0 {
                console.clearLive()
                throw CLIFailure(Signals.exitStatus,
                                 "interrupted; task \(taskId) continues on the server: apixo wait \(taskId)",
                                 code: .cancelled)
            }
            var slice = 250
            if let deadline {
                let left = deadline - monotonicSeconds()
                if left <= 0 && !waited {
                    // The deadline passed before the first wait (a slow submit): one status check.
                    slice = 0
                } else if left <= 0 {
                    console.clearLive()
                    let state = last.map { " (last state: \($0.state.name))" } ?? ""
                    throw CLIFailure(ExitStatus.network,
                                     "timed out waiting for task \(taskId)\(state); it continues on the server: apixo wait \(taskId)",
                                     code: .timeout)
                } else {
                    slice = max(1, min(slice, Int(left * 1000)))
                }
            }
            waited = true
            do {
                let done = try client.wait(model: model, taskId: taskId, timeoutMs: slice)
                report(done, started: started, expected: expected, shownState: &shownState)
                console.clearLive()
                return done
            } catch let e as ApixoError where e.code == .timeout {
                if let t = e.task { last = t }
                report(last, started: started, expected: expected, shownState: &shownState)
            } catch let e as ApixoError {
                if let t = e.task { report(t, started: started, expected: expected, shownState: &shownState) }
                console.clearLive()
                throw e
            }
        }
    }

    private func elapsed(_ t: TaskSnapshot?, started: Double) -> Double {
        if let submittedAt { return monotonicSeconds() - submittedAt }
        if let t, t.createTimeMs > 0 {
            let e = Double(wallMillis() - t.createTimeMs) / 1000
            if e >= 0 { return e }
        }
        return monotonicSeconds() - started
    }

    private func report(_ t: TaskSnapshot?, started: Double, expected: Double, shownState: inout String?) {
        let state = t?.state.name ?? "submitted"
        var el = elapsed(t, started: started)
        if let t, t.state.isTerminal, t.costTimeMs > 0, submittedAt == nil, t.completeTimeMs > t.createTimeMs {
            el = Double(t.completeTimeMs - t.createTimeMs) / 1000
        }
        if console.stderrIsTTY {
            var line = "\(taskId)  \(state)  \(formatSeconds(el)) elapsed"
            if t?.state.isTerminal != true {
                let left = expected - el
                line += left >= 0 ? ", about \(formatSeconds(left)) left" : ", \(formatSeconds(-left)) past the expected \(formatSeconds(expected))"
            }
            console.live(line)
            if t?.state.isTerminal == true { console.note("\(taskId): \(state) after \(formatSeconds(el))") }
        } else if state != shownState, t != nil {
            if t?.state.isTerminal == true {
                console.note("\(taskId): \(state) after \(formatSeconds(el))")
            } else {
                console.note("\(taskId): \(state) (\(formatSeconds(el)) elapsed, about \(formatSeconds(max(0, expected - el))) left)")
            }
        }
        shownState = state
    }
}
