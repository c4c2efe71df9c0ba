import XCTest
@testable import Apixo

/// The one sanitiser: one-line messages, no API key in messages, logs or task JSON.
final class SanitizeTests: XCTestCase {
    func testMessagesAreOneLineAndBounded() {
        let m = Sanitizer.message("a\nb\r\nc\td\u{2028}e\u{7f}f\u{85}g")
        XCTAssertEqual(m, #"a\nb\r\nc\td\u2028e\u007ff\u0085g"#)
        XCTAssertEqual(Sanitizer.message(m), m)  // idempotent: errors built from errors
        let long = Sanitizer.message(String(repeating: "é", count: 5000))
        XCTAssertLessThanOrEqual(long.utf8.count, Sanitizer.maxMessageBytes)
        XCTAssertTrue(long.hasSuffix("..."))
        XCTAssertEqual(Sanitizer.message(long), long)
        XCTAssertEqual(ApixoError(.server, "x\ny").message, #"x\ny"#)
    }

    func testRegisteredKeysAreRedactedEverywhere() throws {
        let key = "sk-test-\"quoted\"-key-4711"
        XCTAssertTrue(Sanitizer.message("Bearer \(key)").contains(key))  // not registered yet
        Sanitizer.register(key)
        Sanitizer.register(key)  // a second client with the same key
        XCTAssertEqual(Sanitizer.message("Bearer \(key)!"), "Bearer [redacted]!")
        XCTAssertEqual(ApixoError(.unauthorized, "401 bad key \(key)").message, "401 bad key [redacted]")
        let data = JSON.object(JSONObject([("taskId", .string("t")), ("state", .string("failed")), ("failCode", .string("X")),
                                           ("failMsg", .string("sent \(key)")),
                                           ("echo", .object(JSONObject([(key, .int(1))])))]))
        let snap = try TaskSnapshot.parse(data: data, model: nil, tag: nil)
        XCTAssertFalse(snap.json.contains(key))
        XCTAssertFalse(snap.json.contains(#"sk-test-\"quoted\"-key-4711"#))
        XCTAssertEqual(snap.failMessage, "sent [redacted]")
        Sanitizer.unregister(key)
        XCTAssertEqual(Sanitizer.message(key), "[redacted]")  // the other client still lives
        Sanitizer.unregister(key)
        XCTAssertEqual(Sanitizer.message(key), key)
    }
}
