import Apixo
import Logging

// The bridge from the library's log lines to swift-log, for Swift hosts (Vapor, Hummingbird
// and most server code log through swift-log). A product of its own: libapixo.so and C hosts
// never link swift-log.

extension ClientOptions {
    /// Sends the client's log lines to a swift-log logger.
    ///
    /// The library's level filter follows the logger's own `logLevel` (`trace` and `debug`
    /// both give the library's debug lines; `notice` and `warning` give warnings and errors),
    /// so that lines the logger would drop are not even formatted.
    /// - Parameter logger: where the lines go; its label and metadata are kept.
    public mutating func log(to logger: Logging.Logger) {
        let logger = logger
        logLevel = LogLevel(logger.logLevel)
        self.logger = { level, message in
            logger.log(level: level.swiftLogLevel, "\(message)", source: "Apixo")
        }
    }
}

extension LogLevel {
    /// The swift-log level of a library log line.
    public var swiftLogLevel: Logging.Logger.Level {
        switch self {
        case .debug: return .debug
        case .info: return .info
        case .warn: return .warning
        case .error: return .error
        }
    }

    /// The library's filter level for a swift-log level: the lowest library level the
    /// logger would still emit.
    /// - Parameter level: a swift-log logger's `logLevel`.
    public init(_ level: Logging.Logger.Level) {
        switch level {
        case .trace, .debug: self = .debug
        case .info: self = .info
        case .notice, .warning: self = .warn
        case .error, .critical: self = .error
        }
    }
}
