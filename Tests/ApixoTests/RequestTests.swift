import XCTest
import Glibc
@testable import Apixo

final class RequestTests: XCTestCase {
    func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let e as ApixoError {
            XCTAssertEqual(e.code, .invalidArgument)
            return e.message
        } catch {
            XCTFail("unexpected \(error)")
            return nil
        }
    }

    func testSeedreamSettersValidateAtOnceAndNameTheField() throws {
        var r = try Request()
        XCTAssertEqual(r.model, "seedream-5-0")
        XCTAssertEqual(message { try r.setMaxImages(11) }, "input.max_images must be an integer from 1 to 10")
        XCTAssertEqual(message { try r.setMaxImages(0) }, "input.max_images must be an integer from 1 to 10")
        XCTAssertNil(message { try r.setMaxImages(10) })
        XCTAssertTrue(message { try r.setResolution("4K") }!.contains("2K, 3K"))
        for ok in ["2K", "3K", "2048x2048", "2048X2048", "2048*2048", "2560x1440", "4096x4096"] { XCTAssertNil(message { try r.setResolution(ok) }) }
        for bad in ["2048x", "x2048", "0x10", "2048-2048", "", "100x100", "1920x1080", "16384x256", "5000x5000"] { XCTAssertNotNil(message { try r.setResolution(bad) }, bad) }
        XCTAssertTrue(message { try r.setAspectRatio("5:4") }!.hasPrefix("input.aspect_ratio must be one of 1:1"))
        XCTAssertNotNil(message { try r.setOutputFormat("gif") })
        XCTAssertNotNil(message { try r.setSequential("on") })
        XCTAssertNotNil(message { try r.setMode("video") })
        XCTAssertNotNil(message { try r.setPromptOptimizeMode("fast") })
        XCTAssertNotNil(message { try r.setProvider("cheap") })
        XCTAssertNotNil(message { try r.setCallbackURL("ftp://x/y") })
        XCTAssertNotNil(message { try r.setInput("web_search", .string("yes")) })
        XCTAssertNotNil(message { try r.setInput("max_images", .bool(true)) })
        XCTAssertNotNil(message { try r.addImageURL("file:///etc/passwd") })
        // A rejected value leaves the request as it was.
        XCTAssertEqual(r.input["max_images"], .int(10))
    }

    func testPromptCountsCharactersNotBytes() throws {
        var r = try Request()
        XCTAssertNotNil(message { try r.setPrompt("") })
        XCTAssertNil(message { try r.setPrompt(String(repeating: "é", count: 5000)) })  // 10000 bytes
        XCTAssertNotNil(message { try r.setPrompt(String(repeating: "a", count: 5001)) })
    }

    func testValidateChecksRequiredFields() throws {
        var r = try Request()
        XCTAssertTrue(message { try r.validate() }!.contains("input.prompt is required"))
        try r.setPrompt("p")
        XCTAssertTrue(message { try r.validate() }!.contains("input.max_images is required"))
        try r.setMaxImages(1)
        XCTAssertNil(message { try r.validate() })
        try r.setMode("image-to-image")
        XCTAssertTrue(message { try r.validate() }!.contains("image_urls is required"))
        for i in 0..<14 { try r.addImageURL("https://example.com/\(i).png") }
        XCTAssertNil(message { try r.validate() })
        XCTAssertNotNil(message { try r.addImageURL("https://example.com/15.png") })
    }

    func testBodyIsExactlyWhatIsSent() throws {
        var r = try Request()
        try r.setPrompt("a \"quoted\" cafe")
        try r.setMaxImages(2)
        try r.setResolution("3K")
        try r.setWebSearch(true)
        try r.setProvider("official")
        try r.setCallbackURL("https://hooks.example.com/apixo")
        try r.setTag("order-7")
        XCTAssertEqual(r.toJSON(),
                       #"{"request_type":"callback","callback_url":"https://hooks.example.com/apixo","provider":"official","input":{"prompt":"a \"quoted\" cafe","max_images":2,"resolution":"3K","web_search":true}}"#)
    }

    func testOtherModelsPassThrough() throws {
        var r = try Request(model: "flux-2")
        try r.setInput("guidance", .double(3.5))
        try r.setInput("resolution", .string("8K"))
        try r.setPrompt("x")
        XCTAssertNil(message { try r.validate() })
        var s = try Request(model: "seedream-4-5")
        XCTAssertNil(message { try s.setResolution("4K") })
        XCTAssertNotNil(message { try s.setResolution("3K") })
        XCTAssertNotNil(message { _ = try Request(model: "../etc") })
        XCTAssertNotNil(message { _ = try Request(model: "") })
    }
}

final class ProtocolTests: XCTestCase {
    func result(status: Int, body: String, headers: [(String, String)] = []) -> HTTPResult {
        var r = HTTPResult()
        r.status = status
        r.body = Array(body.utf8)
        r.headers = headers
        return r
    }

    func testEnvelopeCodeWinsUnderHTTP200() {
        let r = result(status: 200, body: #"{"code":500,"message":"Server error","data":{}}"#)
        guard case .failure(let e) = WireProtocol.interpret(r, what: "x") else { return XCTFail() }
        XCTAssertEqual(e.code, .server)
        XCTAssertTrue(e.retryable)
        let auth = result(status: 200, body: #"{"code":401,"message":"Unauthorized","data":null}"#)
        guard case .failure(let a) = WireProtocol.interpret(auth, what: "x") else { return XCTFail() }
        XCTAssertEqual(a.code, .unauthorized)
        XCTAssertFalse(a.retryable)
    }

    func testRateLimitCarriesRetryAfterAndDetail() {
        let r = result(status: 429, body: #"{"code":429,"message":"Too many","data":{"error":"slow down"}}"#,
                       headers: [("retry-after", "7")])
        guard case .failure(let e) = WireProtocol.interpret(r, what: "x") else { return XCTFail() }
        XCTAssertEqual(e.code, .rateLimited)
        XCTAssertEqual(e.retryAfter, 7)
        XCTAssertEqual(e.retryAfterHeader, "7")
        XCTAssertTrue(e.message.contains("slow down"))
    }

    func testRetryAfterTakesSecondsOrAnHTTPDate() {
        XCTAssertEqual(result(status: 429, body: "", headers: [("retry-after", " 12 ")]).retryAfter, 12)
        XCTAssertNil(result(status: 429, body: "", headers: [("retry-after", "soon")]).retryAfter)
        XCTAssertNil(result(status: 429, body: "").retryAfter)
        // A date in the past means "now"; one a minute ahead means about 60 s.
        XCTAssertEqual(result(status: 429, body: "", headers: [("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]).retryAfter, 0)
        var t = time(nil) + 60
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        var buf = [CChar](repeating: 0, count: 64)
        strftime(&buf, buf.count, "%a, %d %b %Y %H:%M:%S GMT", &tm)
        let ahead = result(status: 429, body: "", headers: [("retry-after", String(cString: buf))]).retryAfter
        XCTAssertEqual(ahead ?? 0, 60, accuracy: 2)
    }

    func testRetryAfterOfAnySizeNeverTraps() {
        func ra(_ v: String) -> Double? { result(status: 429, body: "", headers: [("retry-after", v)]).retryAfter }
        XCTAssertEqual(ra("10000000000000000"), 1e16)
        XCTAssertEqual(ra(String(repeating: "9", count: 400)), .infinity)
        XCTAssertGreaterThan(ra("Fri, 31 Dec 9999 23:59:59 GMT") ?? 0, 2.5e11)
        // Not delta-seconds: ignored rather than guessed at.
        XCTAssertNil(ra("-5"))
        XCTAssertNil(ra("1e3"))
        XCTAssertNil(ra("inf"))
        XCTAssertEqual(Bounded.wholeMillis(1e16), 1_000_000_000_000_000)
        XCTAssertEqual(Bounded.wholeMillis(.infinity), 1_000_000_000_000_000)
        XCTAssertEqual(Bounded.wholeMillis(.nan), 0)
        XCTAssertEqual(Bounded.wholeMillis(-3), 0)
        XCTAssertEqual(Bounded.wholeMillis(0.0101), 11)
    }

    func testGarbageIsProtocolOrStatus() {
        guard case .failure(let e) = WireProtocol.interpret(result(status: 200, body: "<html>"), what: "x") else { return XCTFail() }
        XCTAssertEqual(e.code, .protocol)
        guard case .failure(let g) = WireProtocol.interpret(result(status: 502, body: "bad gateway"), what: "x") else { return XCTFail() }
        XCTAssertEqual(g.code, .server)
        guard case .failure(let n) = WireProtocol.interpret(result(status: 200, body: #"{"code":200,"message":"ok"}"#), what: "x")
        else { return XCTFail() }
        XCTAssertEqual(n.code, .protocol)
        guard case .success(let d) = WireProtocol.interpret(
            result(status: 200, body: #"{"code":200,"message":"success","data":{"taskId":"t1"},"extra":[1]}"#), what: "x")
        else { return XCTFail() }
        XCTAssertEqual(d["taskId"]?.stringValue, "t1")
    }

    func testSnapshotParsing() throws {
        let ok = try JSON.parse(#"{"taskId":"t1","state":"success","createTime":1000,"completeTime":31000,"costTime":29000,"resultJson":"{\"resultUrls\":[\"https://x/a.jpg\",\"https://x/b.jpg\"]}","newField":{"x":1}}"#)
        let s = try TaskSnapshot.parse(data: ok, model: "seedream-5-0", tag: "t")
        XCTAssertEqual(s.resultURLs, ["https://x/a.jpg", "https://x/b.jpg"])
        XCTAssertEqual(s.costTimeMs, 29000)
        XCTAssertEqual(s.tag, "t")
        // An object where the seed page documents a string is tolerated.
        let obj = try JSON.parse(#"{"taskId":"t1","state":"success","resultJson":{"resultUrls":["u"]}}"#)
        XCTAssertEqual(try TaskSnapshot.parse(data: obj, model: nil, tag: nil).resultURLs, ["u"])
        let failed = try JSON.parse(#"{"taskId":"t2","state":"failed","failCode":"SensitiveContentDetected","failMsg":"no"}"#)
        let f = try TaskSnapshot.parse(data: failed, model: nil, tag: nil)
        XCTAssertEqual(f.failCode, "SensitiveContentDetected")
        for bad in [#"{"state":"success"}"#, #"{"taskId":"t","state":"weird"}"#, #"{"taskId":"t","state":"success"}"#,
                    #"{"taskId":"t","state":"success","resultJson":"not json"}"#,
                    #"{"taskId":"t","state":"pending","createTime":"soon"}"#] {
            XCTAssertThrowsError(try TaskSnapshot.parse(data: try JSON.parse(bad), model: nil, tag: nil), bad) { e in
                XCTAssertEqual((e as? ApixoError)?.code, .protocol)
            }
        }
    }

    func testOutOfRangeTimesAreAbsentNotATrap() throws {
        for (field, value) in [("createTime", "1e300"), ("createTime", "-1e300"), ("completeTime", "9223372036854775807"),
                               ("costTime", "1e19"), ("costTime", "-5"), ("createTime", #""99999999999999999999""#),
                               ("completeTime", "253402300800000")] {
            let text = #"{"taskId":"t","state":"failed","failCode":"X","\#(field)":\#(value)}"#
            let s = try TaskSnapshot.parse(data: try JSON.parse(text), model: nil, tag: nil)
            XCTAssertEqual([s.createTimeMs, s.completeTimeMs, s.costTimeMs], [0, 0, 0], text)
        }
        let fine = try TaskSnapshot.parse(data: try JSON.parse(#"{"taskId":"t","state":"failed","createTime":1.7e12,"completeTime":"1700000030000"}"#),
                                          model: nil, tag: nil)
        XCTAssertEqual(fine.createTimeMs, 1_700_000_000_000)
        XCTAssertEqual(fine.completeTimeMs, 1_700_000_030_000)
    }

    func testWebhookBodies() throws {
        let env = #"{"code":200,"message":"success","data":{"taskId":"t9","state":"failed","failCode":"X","failMsg":"m"}}"#
        XCTAssertEqual(try Client.parseWebhook(Array(env.utf8)).id, "t9")
        XCTAssertEqual(try Client.parseWebhook(Array(#"{"taskId":"t8","state":"processing"}"#.utf8)).state, .processing)
        for bad in ["", "[]", "{}", "null", #"{"data":{"state":"success"}}"#] {
            XCTAssertThrowsError(try Client.parseWebhook(Array(bad.utf8)), bad)
        }
    }
}
