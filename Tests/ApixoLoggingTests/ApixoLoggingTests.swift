import Apixo
import ApixoLogging
import Logging
import XCTest

/// Collects what reaches swift-log.
final class Collected: @unchecked Sendable {
    private let lock = Mutex()
    private var lines: [(Logger.Level, String, String)] = []

    func add(_ level: Logger.Level, _ message: String, _ source: String) {
        lock.with { lines.append((level, message, source)) }
    }

    var all: [(Logger.Level, String, String)] { lock.with { lines } }
}

struct CollectingHandler: LogHandler {
    let sink: Collected
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        sink.add(level, message.description, source)
    }
}

final class ApixoLoggingTests: XCTestCase {
    func testClientLinesReachSwiftLogAtTheLoggersLevel() throws {
        let sink = Collected()
        var logger = Logger(label: "apixo-test") { _ in CollectingHandler(sink: sink) }
        logger.logLevel = .debug
        var o = ClientOptions()
        o.apiKey = "sk-test"
        o.baseURL = "http://127.0.0.1:9/api/v1"
        o.log(to: logger)
        XCTAssertEqual(o.logLevel, .debug)
        let client = try Client(options: o)
        client.close()
        let started = sink.all.filter { $0.1.hasPrefix("client started") }
        XCTAssertEqual(started.count, 1, "\(sink.all)")
        XCTAssertEqual(started.first?.0, .debug)
        XCTAssertEqual(started.first?.2, "Apixo")
        XCTAssertFalse(sink.all.contains { $0.1.contains("sk-test") }, "the key is never logged")

        // A logger at warning: the library does not send its debug lines at all.
        let quiet = Collected()
        var warnLogger = Logger(label: "apixo-test") { _ in CollectingHandler(sink: quiet) }
        warnLogger.logLevel = .warning
        o.log(to: warnLogger)
        XCTAssertEqual(o.logLevel, .warn)
        try Client(options: o).close()
        XCTAssertTrue(quiet.all.isEmpty, "\(quiet.all)")
    }

    func testLevelMapping() {
        XCTAssertEqual(LogLevel.warn.swiftLogLevel, .warning)
        XCTAssertEqual(LogLevel.error.swiftLogLevel, .error)
        XCTAssertEqual(LogLevel(.trace), .debug)
        XCTAssertEqual(LogLevel(.notice), .warn)
        XCTAssertEqual(LogLevel(.critical), .error)
    }
}
