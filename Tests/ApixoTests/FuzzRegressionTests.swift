import XCTest
@testable import Apixo

/// Inputs the fuzz targets (Fuzz/, FUZZING.md) found to break a rule; each stays in its
/// target's corpus too.
final class FuzzRegressionTests: XCTestCase {
    /// Fuzz/webhook.swift: an unknown state holding a newline made a two-line message.
    func testUnknownStateWithNewlineGivesOneLineMessage() {
        let body = Array(#"{"taskId": "task_e9", "state": "sucfaa3-j.1pg\nullhttp://127.0.0.1/x.jpg\"]}", "createTime": 1}"#.utf8)
        XCTAssertThrowsError(try Client.parseWebhook(body)) { error in
            let e = error as! ApixoError
            XCTAssertEqual(e.code, .protocol)
            // Control characters are escaped (Sanitizer.message), so the message stays one line.
            XCTAssertTrue(e.message.hasPrefix(#"unknown task state 'sucfaa3-j.1pg\null"#), e.message)
            XCTAssertFalse(e.message.utf8.contains(where: { $0 < 0x20 }), e.message)
        }
    }

    /// The same rule for what an error envelope says (Fuzz/answers.swift checks it).
    func testEnvelopeMessageWithControlCharactersGivesOneLineMessage() {
        var r = HTTPResult()
        r.status = 400
        r.body = Array(#"{"code":400,"message":"bad\r\nX-Injected: 1","data":{"error":"a\tb\u0000c"}}"#.utf8)
        guard case .failure(let e) = WireProtocol.interpret(r, what: "generateTask/m") else { return XCTFail("accepted") }
        XCTAssertEqual(e.code, .badRequest)
        XCTAssertEqual(e.message, #"generateTask/m: 400 bad\r\nX-Injected: 1: a\tb\u0000c"#)
    }
}
