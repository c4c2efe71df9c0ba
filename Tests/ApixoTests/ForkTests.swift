import XCTest
import Glibc
@testable import Apixo

/// A `Client` used in a child of fork() throws `.closed` at once from every call (the C side,
/// with a simulator and 1,000 children, is Tests/c/test_fork.c).
final class ForkTests: XCTestCase {
    func testClientInForkedChildThrowsClosed() throws {
        var opts = ClientOptions()
        opts.apiKey = "sk-test"
        opts.baseURL = "http://127.0.0.1:9/api/v1"  // nothing is sent in this test
        var client: Client? = try Client(options: opts)
        XCTAssertFalse(client!.inForkedChild)
        var req = try Request(model: "seedream-5-0")
        try req.setPrompt("fork")
        let webhook = Array(#"{"taskId":"t1","state":"processing"}"#.utf8)

        fflush(nil)
        let pid = fork()
        if pid == 0 {
            alarm(20)
            var failures: Int32 = 0
            func expectClosed(_ what: String, _ body: () throws -> Void) {
                do {
                    try body()
                    failures += 1
                    print("fork child: \(what) did not throw")
                } catch let e as ApixoError where e.code == .closed
                            && e.message == "client created in another process; create one after fork" {
                } catch {
                    failures += 1
                    print("fork child: \(what) threw \(error)")
                }
            }
            let c = client!
            if !c.inForkedChild { failures += 1 }
            expectClosed("submit") { _ = try c.submit(req) }
            expectClosed("generate") { _ = try c.generate(req, timeoutMs: 1000) }
            expectClosed("status") { _ = try c.status(taskId: "t1") }
            expectClosed("wait") { _ = try c.wait(taskId: "t1", timeoutMs: -1) }
            expectClosed("drain") { try c.drain(timeoutMs: -1) }
            expectClosed("submitAsync") { try c.submitAsync(req) { _, _, _ in failures += 1 } }
            expectClosed("watch") { try c.watch(taskId: "t1") { _, _, _ in failures += 1 } }
            expectClosed("cancel") { try c.cancel(taskId: "t1") }
            expectClosed("ingestWebhook") { _ = try c.ingestWebhook(webhook) }
            expectClosed("download") { try c.download(url: "http://127.0.0.1:9/x.jpg", to: "/tmp/apixo-fork-never") }
            if c.stats().slotsInUse != 0 || c.pendingCallbackCount != 0 { failures += 1 }
            c.close()  // nothing to do in the child
            client = nil  // deinit leaves the parent's parts alone
            fflush(nil)
            _exit(failures)
        }
        XCTAssertGreaterThan(pid, 0)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {}
        XCTAssertEqual(status & 0x7f, 0, "the child was killed by signal \(status & 0x7f)")
        XCTAssertEqual((status >> 8) & 0xff, 0, "failed checks in the child")
        // The parent's client is still open.
        XCTAssertFalse(client!.inForkedChild)
        XCTAssertNoThrow(try client!.checkOpen())
        client!.close()
    }
}
