import Foundation
import XCTest
@testable import Apixo

/// The Swift-concurrency API against the simulator.
final class AsyncTests: XCTestCase {
    func request(_ prompt: String) throws -> Request {
        var r = try Request()
        try r.setPrompt(prompt)
        try r.setMaxImages(1)
        return r
    }

    func client(_ sim: Simulator, scale: Double, tasks: Int = 10) throws -> Client {
        var o = ClientOptions()
        o.apiKey = "sk-sim"
        o.baseURL = sim.base + "/api/v1"
        o.timeScale = scale
        o.maxConcurrentTasks = tasks
        return try Client(options: o)
    }

    func testGenerateSubmitStatusWait() async throws {
        let sim = try Simulator()
        let client = try sim.client()
        defer { client.close() }
        let task = try await client.generate(try request("async generate"), timeout: .seconds(20))
        XCTAssertEqual(task.state, .success)
        XCTAssertEqual(task.resultURLs.count, 1)

        let id = try await client.submit(try request("async submit"))
        let first = try await client.status(taskId: id)
        XCTAssertEqual(first.id, id)
        let done = try await client.wait(taskId: id, timeout: .seconds(20))
        XCTAssertEqual(done.id, id)
        XCTAssertEqual(done.state, .success)

        do {
            _ = try await client.generate(try request("[fail:CONTENT_VIOLATION] async"), timeout: .seconds(20))
            XCTFail("a failing task must throw")
        } catch let e as ApixoError {
            XCTAssertEqual(e.code, .taskFailed)
            XCTAssertEqual(e.task?.failCode, "CONTENT_VIOLATION")
        }
        let stats = try sim.stats()
        XCTAssertEqual(stats["tasks_created"] as? Int, 3)
    }

    /// A task this client did not submit is polled at once, so its stream shows the
    /// intermediate state before the terminal one; each state once, in order.
    func testUpdatesYieldEachStateOnceEndingTerminal() async throws {
        let sim = try Simulator(extra: ["--time-scale", "0.1"])
        let submitter = try client(sim, scale: 0.1)
        defer { submitter.close() }
        let watcher = try client(sim, scale: 0.1)
        defer { watcher.close() }
        let id = try await submitter.submit(try request("async updates"))
        var states: [TaskState] = []
        for try await snap in try watcher.updates(taskId: id) {
            XCTAssertEqual(snap.id, id)
            states.append(snap.state)
        }
        XCTAssertEqual(states.last, .success)
        XCTAssertGreaterThanOrEqual(states.count, 2, "an intermediate snapshot before the terminal one: \(states)")
        XCTAssertEqual(states, states.sorted { $0.rawValue < $1.rawValue }, "in order")
        XCTAssertEqual(Set(states.map(\.rawValue)).count, states.count, "each state once")
        XCTAssertEqual(watcher.stats().trackedTasks, 0)

        let failing = try await submitter.submit(try request("[fail:BOOM] async updates"))
        var last: TaskSnapshot?
        for try await snap in try watcher.updates(taskId: failing) { last = snap }
        XCTAssertEqual(last?.state, .failed, "a failed task ends the stream normally")
        XCTAssertEqual(last?.failCode, "BOOM")
    }

    /// Cancelling the Swift task ends the wait at once with the task id and drops the
    /// tracking; breaking out of an update stream drops it too.
    func testCancellationStopsTrackingAndCarriesTheId() async throws {
        let sim = try Simulator(extra: ["--time-scale", "1"])  // tasks run for 25 s or more
        let submitter = try client(sim, scale: 1)
        defer { submitter.close() }
        let watcher = try client(sim, scale: 1)
        defer { watcher.close() }
        let id = try await submitter.submit(try request("async cancel"))

        let waiting = Task { try await watcher.wait(taskId: id) }
        while watcher.stats().trackedTasks == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
        waiting.cancel()
        switch await waiting.result {
        case .success: XCTFail("a cancelled wait must throw")
        case .failure(let e):
            let e = try XCTUnwrap(e as? ApixoError)
            XCTAssertEqual(e.code, .cancelled)
            XCTAssertEqual(e.task?.id, id)
        }
        XCTAssertEqual(watcher.stats().trackedTasks, 0, "the cancelled wait no longer tracks the task")

        // Already cancelled before it starts: throws without tracking anything.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await watcher.wait(taskId: id)
        }
        if case .failure(let e) = await early.result {
            XCTAssertEqual((e as? ApixoError)?.code, .cancelled)
            XCTAssertEqual((e as? ApixoError)?.task?.id, id)
        } else {
            XCTFail("a wait in a cancelled task must throw")
        }
        XCTAssertEqual(watcher.stats().trackedTasks, 0)

        var seen = 0
        for try await _ in try watcher.updates(taskId: id) {
            seen += 1
            break
        }
        XCTAssertEqual(seen, 1)
        var left = watcher.stats().trackedTasks
        for _ in 0..<400 where left != 0 {
            try await Task.sleep(nanoseconds: 5_000_000)
            left = watcher.stats().trackedTasks
        }
        XCTAssertEqual(left, 0, "leaving the stream drops the tracking")
    }

    /// A submit cancelled while it waits in the local queue (the concurrency cap is taken)
    /// is never sent; a queue timeout does the same.
    func testCancelledOrTimedOutQueuedSubmitIsNeverSent() async throws {
        let sim = try Simulator(extra: ["--time-scale", "1"])
        let client = try client(sim, scale: 1, tasks: 1)
        defer { client.close() }
        _ = try await client.submit(try request("takes the only slot"))
        let queued = Task { try await client.submit(try request("never sent")) }
        while client.stats().queuedSubmits == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
        queued.cancel()
        if case .failure(let e) = await queued.result {
            XCTAssertEqual((e as? ApixoError)?.code, .cancelled)
            XCTAssertTrue((e as? ApixoError)?.message.contains("nothing was sent") ?? false, "\(e)")
        } else {
            XCTFail("a cancelled queued submit must throw")
        }
        do {
            _ = try await client.submit(try request("never sent either"), queueTimeout: .milliseconds(50))
            XCTFail("the queue timeout must throw")
        } catch let e as ApixoError {
            XCTAssertEqual(e.code, .timeout)
        }
        XCTAssertEqual(client.stats().queuedSubmits, 0)
        let stats = try sim.stats()
        XCTAssertEqual(stats["tasks_created"] as? Int, 1)
        XCTAssertNil((stats["submits_by_prompt"] as? [String: Any])?["never sent"])
    }

    func testCloseEndsPendingAsyncCalls() async throws {
        let sim = try Simulator(extra: ["--time-scale", "1"])
        let submitter = try client(sim, scale: 1)
        defer { submitter.close() }
        let watcher = try client(sim, scale: 1)
        let id = try await submitter.submit(try request("async close"))
        let waiting = Task { try await watcher.wait(taskId: id) }
        // The wait is on the engine once the task is tracked; the stream starts after it, so
        // that its tracking cannot be taken for the wait's (a wait begun after the close would
        // meet a closed client instead of a pending call).
        while watcher.stats().trackedTasks == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
        let stream = try watcher.updates(taskId: id)
        watcher.close()
        if case .failure(let e) = await waiting.result {
            XCTAssertEqual((e as? ApixoError)?.code, .closed)
            XCTAssertEqual((e as? ApixoError)?.task?.id, id)
        } else {
            XCTFail("close must end the wait")
        }
        do {
            for try await _ in stream {}
            XCTFail("close must end the stream with an error")
        } catch let e as ApixoError {
            XCTAssertEqual(e.code, .closed)
        }
        do {
            _ = try await watcher.status(taskId: id)
            XCTFail("a closed client must throw")
        } catch let e as ApixoError {
            XCTAssertEqual(e.code, .closed)
        }
    }
}
