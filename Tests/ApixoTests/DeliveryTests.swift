import Glibc
import XCTest
@testable import Apixo

/// The queue Delivery on its own: readiness of its descriptor, order, the log bound, which
/// thread runs what, and what stop does with what is left.
final class EventQueueTests: XCTestCase {
    func readable(_ fd: Int32) -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 1
    }

    func completion(_ code: ApixoCode, _ ud: UInt, callback: TaskCallback?, log: @escaping (String) -> Void) -> Completion {
        Completion(Outcome(code: code, task: nil, message: "m\(ud)"), callback: callback, userData: ud,
                   delivered: { log("delivered \(ud)") }, release: { log("release \(ud)") })
    }

    func testReadinessOrderAndHandOver() throws {
        let q = try EventQueue()
        var trail: [String] = []
        XCTAssertFalse(readable(q.fd))
        let sink: LogSink = { _, m in trail.append("logged \(m)") }
        q.complete(completion(.ok, 1, callback: nil) { trail.append($0) })
        XCTAssertEqual(trail, ["release 1"])  // waiting in the queue settles a nil-callback one
        XCTAssertTrue(readable(q.fd))
        q.log(.warn, "w", sink)
        q.complete(completion(.taskFailed, 2, callback: { _, _, m in trail.append("ran \(m)") }) { trail.append($0) })
        XCTAssertTrue(readable(q.fd))
        guard case .item(.completion(let c1)) = q.next(until: 0) else { return XCTFail("first is the completion") }
        XCTAssertEqual(c1.userData, 1)
        XCTAssertEqual(trail.suffix(2), ["delivered 1", "release 1"])  // handed over: recorded
        guard case .item(.log(.warn, "w", _)) = q.next(until: 0) else { return XCTFail("then the log line") }
        XCTAssertTrue(readable(q.fd))
        XCTAssertEqual(try q.dispatch(max: 10, until: 0), 1)
        XCTAssertEqual(trail.suffix(3), ["ran m2", "delivered 2", "release 2"])
        XCTAssertFalse(readable(q.fd))
        guard case .timeout = q.next(until: 0) else { return XCTFail("empty") }
        guard case .timeout = q.next(until: monotonicSeconds() + 0.02) else { return XCTFail("empty after a wait") }
    }

    func testLogBoundAndDroppedCount() throws {
        let q = try EventQueue()
        var calls = 0
        let sink: LogSink = { _, _ in calls += 1 }
        for i in 0..<(EventQueue.logCapacity + 10) { q.log(.debug, "l\(i)", sink) }
        XCTAssertEqual(q.dropped, 10)
        q.complete(completion(.ok, 9, callback: nil) { _ in })  // completions are never dropped
        XCTAssertEqual(try q.dispatch(max: Int.max, until: 0), EventQueue.logCapacity + 1)
        XCTAssertEqual(calls, EventQueue.logCapacity)
        q.log(.debug, "room again", sink)
        XCTAssertEqual(try q.dispatch(max: 1, until: 0), 1)
        XCTAssertEqual(q.dropped, 10)
    }

    /// drain's step skips log lines and nil-callback completions, keeping their places.
    func testRunOneCallbackKeepsTheRestInOrder() throws {
        let q = try EventQueue()
        var ran: [UInt] = []
        q.log(.info, "first", { _, _ in })
        q.complete(completion(.ok, 1, callback: nil) { _ in })
        q.complete(completion(.ok, 2, callback: { _, _, _ in ran.append(2) }) { _ in })
        q.complete(completion(.ok, 3, callback: { _, _, _ in ran.append(3) }) { _ in })
        XCTAssertTrue(q.runOneCallback())
        XCTAssertTrue(q.runOneCallback())
        XCTAssertFalse(q.runOneCallback())
        XCTAssertEqual(ran, [2, 3])
        guard case .item(.log(_, "first", _)) = q.next(until: 0) else { return XCTFail("the log line first") }
        guard case .item(.completion(let c)) = q.next(until: 0), c.userData == 1 else { return XCTFail("then 1") }
        XCTAssertFalse(readable(q.fd))
    }

    /// stop runs what has a callback on the stopping thread and drops the rest unrecorded.
    func testStopRunsCallbacksOnTheCaller() throws {
        let q = try EventQueue()
        let me = pthread_self()
        var trail: [String] = []
        q.complete(completion(.closed, 5, callback: { _, _, _ in
            trail.append(pthread_equal(me, pthread_self()) != 0 ? "ran on caller" : "ran elsewhere")
        }) { trail.append($0) })
        q.complete(completion(.closed, 6, callback: nil) { trail.append($0) })
        q.log(.info, "dropped", { _, _ in trail.append("logged") })
        q.stop()
        XCTAssertEqual(trail, ["release 6", "ran on caller", "delivered 5", "release 5"])
        XCTAssertFalse(readable(q.fd))
        XCTAssertThrowsError(try q.dispatch(max: 1, until: 0)) { XCTAssertEqual(($0 as? ApixoError)?.code, .closed) }
        guard case .closed = q.next(until: 0) else { return XCTFail("closed") }
    }

    /// A taker blocked without a deadline wakes with .closed.
    func testStopWakesABlockedTaker() throws {
        let q = try EventQueue()
        let woke = Waiter<Bool>()
        let t = startThread {
            if case .closed = q.next(until: nil) { woke.fulfill(true) } else { woke.fulfill(false) }
        }
        usleep(20_000)
        q.stop()
        XCTAssertEqual(woke.wait(until: monotonicSeconds() + 5), true)
        pthread_join(t, nil)
    }
}

/// The Swift API of the queue mode against the simulator.
final class QueueDeliveryTests: XCTestCase {
    func queueClient(_ sim: Simulator) throws -> Client {
        var o = ClientOptions()
        o.apiKey = "sk-sim"
        o.baseURL = sim.base + "/api/v1"
        o.timeScale = 0.01
        o.delivery = .queue
        return try Client(options: o)
    }

    func testNextEventAndDispatchOnTheCaller() throws {
        let sim = try Simulator()
        let client = try queueClient(sim)
        defer { client.close() }
        XCTAssertEqual(client.deliveryMode, .queue)
        XCTAssertNotNil(client.eventFD)
        var r = try Request()
        try r.setPrompt("swift queue")
        try r.setMaxImages(1)
        try client.submitAsync(r, userData: 41, callback: nil)
        let me = pthread_self()
        var ranOn: pthread_t?
        try client.submitAsync(r, userData: 42) { code, _, _ in
            XCTAssertEqual(code, .ok)
            ranOn = pthread_self()
        }
        try client.drain(timeoutMs: 30_000)  // runs 42 here, leaves 41 waiting
        XCTAssertNotNil(ranOn)
        if let ranOn { XCTAssertNotEqual(pthread_equal(ranOn, me), 0) }
        guard case .completion(let o, let ud) = try client.nextEvent(timeoutMs: 0) else { return XCTFail("a completion") }
        XCTAssertEqual(ud, 41)
        XCTAssertEqual(o.code, .ok)
        XCTAssertEqual(o.task?.state, .success)
        XCTAssertThrowsError(try client.nextEvent(timeoutMs: 0)) { XCTAssertEqual(($0 as? ApixoError)?.code, .timeout) }
        XCTAssertEqual(try client.dispatch(max: 5, timeoutMs: 0), 0)
    }

    func testThreadModeRefusesTheQueueCalls() throws {
        let sim = try Simulator()
        let client = try sim.client()
        defer { client.close() }
        XCTAssertNil(client.eventFD)
        XCTAssertEqual(client.logDropped, 0)
        var r = try Request()
        try r.setPrompt("swift thread")
        try r.setMaxImages(1)
        XCTAssertThrowsError(try client.submitAsync(r, callback: nil)) { XCTAssertEqual(($0 as? ApixoError)?.code, .invalidArgument) }
        XCTAssertThrowsError(try client.dispatch(max: 1, timeoutMs: 0)) { XCTAssertEqual(($0 as? ApixoError)?.code, .invalidArgument) }
        XCTAssertThrowsError(try client.nextEvent(timeoutMs: 0)) { XCTAssertEqual(($0 as? ApixoError)?.code, .invalidArgument) }
    }
}
