import XCTest
import Glibc
@testable import Apixo

final class JournalTests: XCTestCase {
    var path = ""

    override func setUp() {
        path = "/tmp/apixo-journal-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
    }

    override func tearDown() {
        unlink(path)
    }

    func testEntriesSurviveReopenAndDeliveredOnesAreGone() throws {
        do {
            let j = try Journal(path: path)
            let a = try j.intent(model: "seedream-5-0", body: #"{"input":{"prompt":"a"}}"#, tag: "A")
            j.sending(seq: a)
            j.accepted(seq: a, taskId: "task_a")
            let b = try j.intent(model: "seedream-5-0", body: #"{"input":{"prompt":"b"}}"#, tag: "B")
            j.sending(seq: b)
            let c = try j.intent(model: "seedream-5-0", body: #"{"input":{"prompt":"c"}}"#, tag: "C")
            let d = try j.intent(model: "seedream-5-0", body: #"{"input":{"prompt":"d"}}"#, tag: "D")
            j.sending(seq: d)
            j.accepted(seq: d, taskId: "task_d")
            j.terminal(seq: d, code: .ok, message: "", snapshot: nil)
            j.delivered(seq: d)
            _ = c
            j.close()
        }
        let j = try Journal(path: path)
        defer { j.close() }
        let left = j.takeLeftover()
        XCTAssertEqual(left.map { $0.tag }, ["A", "B", "C"])
        XCTAssertEqual(left[0].taskId, "task_a")
        XCTAssertTrue(left[1].sending)
        XCTAssertNil(left[1].taskId)
        XCTAssertFalse(left[2].sending)
        XCTAssertTrue(j.takeLeftover().isEmpty, "leftover is handed out once")
        // New sequence numbers never collide with old ones.
        XCTAssertGreaterThan(try j.intent(model: "m", body: "{}", tag: nil), left.map { $0.seq }.max()!)
    }

    func testTornLastRecordIsSkipped() throws {
        do {
            let j = try Journal(path: path)
            let a = try j.intent(model: "seedream-5-0", body: "{}", tag: "A")
            j.sending(seq: a)
            j.close()
        }
        // Power loss in the middle of the next record.
        let fd = open(path, O_WRONLY | O_APPEND)
        let torn = "1234abcd {\"t\":\"accepted\",\"seq\":1,\"id\":\"ta"
        _ = torn.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let j = try Journal(path: path)
        defer { j.close() }
        let left = j.takeLeftover()
        XCTAssertEqual(left.count, 1)
        XCTAssertNil(left[0].taskId, "the torn accepted record must not count")
        XCTAssertTrue(left[0].sending)
    }

    func testSecondClientOnTheSameJournalIsRefused() throws {
        let j = try Journal(path: path)
        XCTAssertThrowsError(try Journal(path: path)) { e in
            XCTAssertEqual((e as? ApixoError)?.code, .io)
            XCTAssertTrue((e as? ApixoError)?.message.contains("in use") ?? false)
        }
        j.close()
        XCTAssertNoThrow(try Journal(path: path).close())
    }

    func testCompactionKeepsTheFileSmall() throws {
        let j = try Journal(path: path)
        for i in 0..<2000 {
            let s = try j.intent(model: "m", body: "{\"input\":{\"prompt\":\"\(i)\"}}", tag: "t\(i)")
            j.sending(seq: s)
            j.accepted(seq: s, taskId: "task\(i)")
            j.terminal(seq: s, code: .ok, message: "", snapshot: nil)
            j.delivered(seq: s)
        }
        let live = try j.intent(model: "m", body: "{}", tag: "live")
        j.close()
        var st = stat()
        XCTAssertEqual(stat(path, &st), 0)
        XCTAssertLessThan(st.st_size, 200_000, "10,000 records must have been compacted away")
        let again = try Journal(path: path)
        defer { again.close() }
        XCTAssertEqual(again.takeLeftover().map { $0.seq }, [live])
    }
}
