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

    /// Fuzz/webhook.swift: a time field far outside Int64 (a huge double) trapped in
    /// Int64(_:); now an implausible time reads as unknown (0). Inputs kept in the corpus as
    /// crash-costtime-1e31 and crash-completetime-1e192.
    func testHugeTimeFieldsDoNotTrap() throws {
        let cost = Array(#"{"taskId": "t1", "state": "success", "resultJson": "{\"resultUrls\":[\"http://127.0.0.1/a.jpg\"]}", "costTime": 2660918888888888888888888e7}"#.utf8)
        let a = try Client.parseWebhook(cost)
        XCTAssertEqual(a.costTimeMs, 0)
        XCTAssertEqual(a.resultURLs, ["http://127.0.0.1/a.jpg"])
        let complete = Array(#"{"code":200,"message":"success","data":{"taskId":"t2","state":"failed","failCode":"X","createTime":1796162070917,"completeTime":179.16207e192}}"#.utf8)
        let b = try Client.parseWebhook(complete)
        XCTAssertEqual(b.completeTimeMs, 0)
        XCTAssertEqual(b.createTimeMs, 1796162070917)
    }
}
