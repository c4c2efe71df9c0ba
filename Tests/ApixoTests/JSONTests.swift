import XCTest
@testable import Apixo

final class JSONTests: XCTestCase {
    func testRoundTripKeepsOrderAndTypes() throws {
        let text = #"{"b":1,"a":[true,null,"x\u00e9",2.5],"c":{"z":-3}}"#
        let v = try JSON.parse(text)
        XCTAssertEqual(v.objectValue?.keys, ["b", "a", "c"])
        XCTAssertEqual(v.serialized(), #"{"b":1,"a":[true,null,"xé",2.5],"c":{"z":-3}}"#)
    }

    func testMalformedIsAnError() {
        XCTAssertThrowsError(try JSON.parse("{\"a\":"))
        XCTAssertThrowsError(try JSON.parse(""))
        XCTAssertThrowsError(try JSON.parse(#"{"a":1,"a":2}"#))
    }
}
