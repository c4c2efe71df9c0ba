import CApixoFork

/// The result codes of the C ABI (`apixo_code`). Values are part of the ABI: never renumbered.
public enum ApixoCode: Int32, CaseIterable, Sendable {
    case ok = 0
    case invalidArgument = 1
    case badRequest = 2
    case unauthorized = 3
    case paymentRequired = 4
    case forbidden = 5
    case notFound = 6
    case rateLimited = 7
    case server = 8
    case network = 9
    case timeout = 10
    case `protocol` = 11
    case taskFailed = 12
    case cancelled = 13
    case closed = 14
    case io = 15
    case noMemory = 16
    case indeterminate = 17

    /// The C constant's name, e.g. "APIXO_ERR_TIMEOUT".
    public var name: String {
        switch self {
        case .ok: return "APIXO_OK"
        case .invalidArgument: return "APIXO_ERR_INVALID_ARGUMENT"
        case .badRequest: return "APIXO_ERR_BAD_REQUEST"
        case .unauthorized: return "APIXO_ERR_UNAUTHORIZED"
        case .paymentRequired: return "APIXO_ERR_PAYMENT_REQUIRED"
        case .forbidden: return "APIXO_ERR_FORBIDDEN"
        case .notFound: return "APIXO_ERR_NOT_FOUND"
        case .rateLimited: return "APIXO_ERR_RATE_LIMITED"
        case .server: return "APIXO_ERR_SERVER"
        case .network: return "APIXO_ERR_NETWORK"
        case .timeout: return "APIXO_ERR_TIMEOUT"
        case .protocol: return "APIXO_ERR_PROTOCOL"
        case .taskFailed: return "APIXO_ERR_TASK_FAILED"
        case .cancelled: return "APIXO_ERR_CANCELLED"
        case .closed: return "APIXO_ERR_CLOSED"
        case .io: return "APIXO_ERR_IO"
        case .noMemory: return "APIXO_ERR_NO_MEMORY"
        case .indeterminate: return "APIXO_ERR_INDETERMINATE"
        }
    }

    /// The code for an API status (HTTP status or envelope `code`).
    static func forStatus(_ status: Int) -> ApixoCode {
        switch status {
        case 400: return .badRequest
        case 401: return .unauthorized
        case 402: return .paymentRequired
        case 403: return .forbidden
        case 404: return .notFound
        case 408: return .timeout
        case 429: return .rateLimited
        case 500...599: return .server
        case 405...499: return .badRequest
        default: return .protocol
        }
    }
}

/// An error of the library: a code and a one-line message (never containing the API key:
/// the message is sanitised here, whatever server text it quotes).
/// `task` carries the last known snapshot where there is one (a failed task, a timed-out wait).
public struct ApixoError: Error, CustomStringConvertible, Sendable {
    public let code: ApixoCode
    public let message: String
    public var task: TaskSnapshot?
    /// Seconds the server asked us to wait (429/503 Retry-After), when it said so.
    var retryAfter: Double?
    /// That Retry-After header as the server sent it (for messages).
    var retryAfterHeader: String?
    /// Whether sending the same GET again could succeed (network, timeout, 429, 5xx, garbage).
    var retryable = false
    /// The API status behind the error, when there was one.
    var httpStatus = 0

    public init(_ code: ApixoCode, _ message: String, task: TaskSnapshot? = nil) {
        self.code = code
        self.message = Sanitizer.message(message)
        self.task = task
    }

    public var description: String { "\(code.name): \(message)" }

    /// The same error with more said at the end of its message.
    func appending(_ more: String) -> ApixoError {
        var e = ApixoError(code, message + more, task: task)
        e.retryAfter = retryAfter
        e.retryAfterHeader = retryAfterHeader
        e.retryable = retryable
        e.httpStatus = httpStatus
        return e
    }
}

/// Log levels, as APIXO_LOG_* in the header.
public enum LogLevel: Int32, Comparable, Sendable {
    case debug = 0, info = 1, warn = 2, error = 3
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Where the library's log lines go. Called from library threads in the thread delivery mode,
/// only from `Client.dispatch` in the queue mode.
public typealias LogSink = @Sendable (LogLevel, String) -> Void

/// Filters log lines by level and hands them to the client's Delivery (none: straight to the
/// sink, on the thread that logs, as the thread delivery mode does).
final class Logger {
    let sink: LogSink?
    let minLevel: LogLevel
    let delivery: Delivery?

    init(sink: LogSink?, minLevel: LogLevel, delivery: Delivery? = nil) {
        self.sink = sink
        self.minLevel = minLevel
        self.delivery = delivery
    }

    func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard let sink, level >= minLevel else { return }
        let text = Sanitizer.message(message())
        // The thread mode runs the host's sink right here, and host code may wait for a lock
        // its forking thread holds (Python's GIL): not while fork() waits for this thread
        // (see Sources/CApixoFork/fork.c).
        let out = apx_host_call_begin()
        if let delivery { delivery.log(level, text, sink) } else { sink(level, text) }
        apx_host_call_end(out)
    }
}
