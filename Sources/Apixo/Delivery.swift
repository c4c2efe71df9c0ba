import Glibc

/// How a client hands completions and log lines to its host (`apixo_delivery`).
public enum DeliveryMode: Int32, Sendable {
    /// Callbacks and the logger run on the client's own dispatcher thread (the default).
    case thread = 0
    /// Nothing of the host runs on a library thread: completions and log lines wait in a queue
    /// whose descriptor (`Client.eventFD`) is readable while it is not empty; the host runs
    /// them (`Client.dispatch`) or takes them (`Client.nextEvent`) on its own thread.
    case queue = 1
}

/// What the queue delivery mode hands over (`Client.nextEvent`).
public enum Event {
    /// A tracked task's delivery: its outcome and the user data given with its callback.
    case completion(Outcome, userData: UInt)
    /// A log line at a level the logger asked for.
    case log(LogLevel, String)
}

/// One completion on its way to the host. `finish` is what sits above the Delivery (the
/// journal's "delivered" record, the drain ticket): the Delivery calls it exactly once,
/// after the callback returned or when the completion was handed over.
final class Completion {
    let outcome: Outcome
    let callback: TaskCallback?
    let userData: UInt
    private let onDelivered: () -> Void
    /// Settles the drain ticket only (a completion without a callback that waits in the queue).
    let release: () -> Void

    init(_ outcome: Outcome, callback: TaskCallback?, userData: UInt,
         delivered: @escaping () -> Void, release: @escaping () -> Void) {
        self.outcome = outcome
        self.callback = callback
        self.userData = userData
        onDelivered = delivered
        self.release = release
    }

    /// Runs the callback (when there is one) on the calling thread, then records the delivery.
    func run() {
        callback?(outcome.code, outcome.task, outcome.message)
        finish()
    }

    /// Records the delivery: the journal first, then the drain ticket.
    func finish() {
        onDelivered()
        release()
    }
}

/// Receives outcomes and log lines and hands them to the host: `DispatcherThread` runs them
/// on a thread of ours, `EventQueue` keeps them for the host's own thread.
protocol Delivery: AnyObject {
    func start()
    /// Takes a completion; it is delivered exactly once.
    func complete(_ c: Completion)
    /// Takes a log line already filtered by level; `sink` is the host's logger.
    func log(_ level: LogLevel, _ message: String, _ sink: @escaping LogSink)
    /// True while the calling thread runs one of this client's callbacks.
    var isDeliveryThread: Bool { get }
    /// After the engine stopped: hands over or runs what still waits, then stops.
    func stop()
}
