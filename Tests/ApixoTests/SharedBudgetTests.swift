import Foundation
import XCTest
@testable import Apixo

/// A redis-server of its own on a free loopback port (Debian's redis-server; .ci/run installs it).
final class RedisServer {
    let process = Process()
    let port: Int
    var url: String { "redis://127.0.0.1:\(port)" }

    init() throws {
        port = try RedisServer.freePort()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--enable-debug-command", "local", "--loglevel", "warning"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 {
            if (try? cli(["PING"])) == "PONG" { return }
            usleep(20_000)
        }
        throw ApixoError(.network, "redis-server did not start on port \(port)")
    }

    deinit { stop() }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    /// One command through a connection of its own.
    @discardableResult
    func cli(_ args: [String]) throws -> String? {
        let c = try RedisConnection(try RedisURL.parse(url), timeoutMs: 2000)
        switch try c.command(args) {
        case .status(let s), .string(let s): return s
        case .integer(let i): return String(i)
        default: return nil
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Bool in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { throw ApixoError(.network, "no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}

/// Log lines at once, on the calling thread.
final class InlineDelivery: Delivery {
    func start() {}
    func complete(_ c: Completion) {}
    func log(_ level: LogLevel, _ message: String, _ sink: @escaping LogSink) { sink(level, message) }
    var isDeliveryThread: Bool { false }
    func stop() {}
}

/// Runs `body` on `count` threads of their own and waits until they have all ended, at most
/// `timeout` seconds; false when one had not. The wait orders their writes before the caller's
/// reads (a semaphore, unlike polling `Thread.isExecuting`).
func onThreads(_ count: Int, timeout: Double, _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = DispatchSemaphore(value: 0)
    for _ in 0..<count {
        Thread {
            body()
            done.signal()
        }.start()
    }
    return (0..<count).allSatisfy { _ in done.wait(timeout: .now() + timeout) == .success }
}

final class SharedBudgetTests: XCTestCase {
    final class Lines {
        let lock = NSLock()
        var all: [String] = []
        func add(_ s: String) { lock.lock(); all.append(s); lock.unlock() }
        func contains(_ s: String) -> Bool { lock.lock(); defer { lock.unlock() }; return all.contains { $0.contains(s) } }
    }

    func budget(_ server: RedisServer, namespace: String = "t", rpm: Int = 0, window: Double = 1,
                slots: Int = 0, scale: Double = 0.01, log: Lines? = nil) throws -> SharedBudget {
        SharedBudget(url: try RedisURL.parse(server.url), namespace: namespace, requestsPerWindow: rpm,
                     window: window, maxSlots: slots, scale: scale, timeoutMs: 250,
                     logger: Logger(sink: { _, m in log?.add(m) }, minLevel: .debug, delivery: InlineDelivery()))
    }

    func testURLs() throws {
        XCTAssertEqual(try RedisURL.parse("redis://localhost").endpoint, .tcp(host: "localhost", port: 6379))
        let u = try RedisURL.parse("redis://:s3cret@10.0.0.1:6380/2")
        XCTAssertEqual(u.endpoint, .tcp(host: "10.0.0.1", port: 6380))
        XCTAssertEqual(u.password, "s3cret")
        XCTAssertEqual(u.db, 2)
        XCTAssertFalse(u.display.contains("s3cret"))
        XCTAssertEqual(try RedisURL.parse("redis://[::1]:7000").endpoint, .tcp(host: "::1", port: 7000))
        XCTAssertEqual(try RedisURL.parse("unix:///run/redis.sock").endpoint, .unix(path: "/run/redis.sock"))
        XCTAssertEqual(try RedisURL.parse("unix:///run/redis.sock?db=3").db, 3)
        for bad in ["", "http://x", "redis://", "redis://h:0", "redis://h:65536", "redis://h:99999999999999999999",
                    "redis://h/-1", "redis://h/x", "unix://relative", "redis://h x", "redis://:@h",
                    "unix:///" + String(repeating: "a", count: 200)] {
            XCTAssertThrowsError(try RedisURL.parse(bad), bad) { e in
                XCTAssertEqual((e as? ApixoError)?.code, .invalidArgument)
            }
        }
    }

    func testSHA256AndTheDefaultNamespaceHidesTheKey() {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(String(repeating: "a", count: 1000)),
                       "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
        let ns = SharedBudget.defaultNamespace(apiKey: "sk-secret-key")
        XCTAssertFalse(ns.contains("sk-secret"))
        XCTAssertEqual(ns, SharedBudget.defaultNamespace(apiKey: "sk-secret-key"))
        XCTAssertNotEqual(ns, SharedBudget.defaultNamespace(apiKey: "sk-other-key"))
    }

    /// Four clients hammer one window from four threads: no window ever holds more grants
    /// than the capacity, and the capacity is actually used.
    func testRateIsNeverGrantedTwice() throws {
        let server = try RedisServer()
        let capacity = 20, window = 0.5, duration = 2.0
        final class Grants: @unchecked Sendable {
            let lock = NSLock()
            var times: [Double] = []
        }
        let g = Grants()
        let ended = onThreads(4, timeout: duration + 30) { [self] in
            let b = try! budget(server, rpm: capacity, window: window)
            let end = monotonicSeconds() + duration
            while true {
                let now = monotonicSeconds()
                if now > end { break }
                if b.takeRequest(now: now) {
                    g.lock.lock(); g.times.append(monotonicSeconds()); g.lock.unlock()
                } else {
                    let next = b.nextRequestTime(now: now)
                    usleep(useconds_t(max(200, min(50_000, (next - now) * 1e6))))
                }
            }
        }
        XCTAssertTrue(ended, "every thread ended")
        let grants = g.lock.withLock { g.times.sorted() }
        // Redis's clock and ours run at the same rate; allow 20 ms for the round trip.
        var worst = 0
        var j = 0
        for i in grants.indices {
            while grants[i] - grants[j] >= window - 0.02 { j += 1 }
            worst = max(worst, i - j + 1)
        }
        XCTAssertLessThanOrEqual(worst, capacity, "most grants in any window")
        XCTAssertGreaterThanOrEqual(grants.count, capacity * 3, "the window was used: \(grants.count) grants in \(duration) s")
    }

    /// Leases across clients never exceed the slots; a freed slot goes to the client that
    /// waited first (FIFO ticket), not to the faster peer that just released it.
    func testSlotsAreLeasedFairlyAndNeverOverGranted() throws {
        let server = try RedisServer()
        let a = try budget(server, slots: 1), b = try budget(server, slots: 1)
        var now = monotonicSeconds()
        guard let la = a.takeSlot(now: now, hold: 10) else { return XCTFail("a gets the free slot") }
        XCTAssertNil(b.takeSlot(now: now, hold: 10), "b waits: the slot is taken")
        a.release(la, now: now)
        // a asks again at once (its release rides along): b's ticket is first.
        XCTAssertNil(a.takeSlot(now: now, hold: 10), "a must not overtake the waiting b")
        now += 1
        XCTAssertNotNil(b.takeSlot(now: now, hold: 10), "b gets the slot it waited for")
        XCTAssertEqual(try server.cli(["ZCARD", "t:slots"]), "1")

        // Many clients, many threads: the slots held at once never exceed the limit.
        let maxSlots = 3
        final class Held: @unchecked Sendable {
            let lock = NSLock()
            var now = 0, peak = 0, taken = 0
        }
        let h = Held()
        let ended = onThreads(4, timeout: 30) { [self] in
            let c = try! budget(server, namespace: "u", slots: maxSlots)
            let end = monotonicSeconds() + 1.5
            while monotonicSeconds() < end {
                let t = monotonicSeconds()
                _ = c.tick(now: t)
                if c.slotAvailable(now: t), let l = c.takeSlot(now: t, hold: 5) {
                    h.lock.lock(); h.now += 1; h.taken += 1; h.peak = max(h.peak, h.now); h.lock.unlock()
                    usleep(useconds_t.random(in: 2_000...15_000))
                    h.lock.lock(); h.now -= 1; h.lock.unlock()
                    c.release(l, now: monotonicSeconds())
                } else {
                    usleep(2_000)
                }
            }
        }
        XCTAssertTrue(ended, "every thread ended")
        let (peak, taken) = h.lock.withLock { (h.peak, h.taken) }
        XCTAssertLessThanOrEqual(peak, maxSlots)
        XCTAssertGreaterThan(taken, 20, "slots changed hands")
    }

    /// A holder that dies (no release, no heartbeat) loses its slot when the lease expires,
    /// and not before.
    func testADeadHoldersLeaseExpires() throws {
        let server = try RedisServer()
        let scale = 0.002  // minimum hold 0.24 s
        let dead = try budget(server, slots: 1, scale: scale), alive = try budget(server, slots: 1, scale: scale)
        let t0 = monotonicSeconds()
        XCTAssertNotNil(dead.takeSlot(now: t0, hold: 0.3))
        XCTAssertNil(alive.takeSlot(now: t0, hold: 0.3))
        var got: Double?
        while monotonicSeconds() - t0 < 3, got == nil {
            usleep(10_000)
            let now = monotonicSeconds()
            if alive.slotAvailable(now: now), alive.takeSlot(now: now, hold: 0.3) != nil { got = now - t0 }
        }
        guard let got else { return XCTFail("the dead holder's slot never came back") }
        XCTAssertGreaterThanOrEqual(got, 0.29, "not before the lease ran out")
    }

    func testNamespacesDoNotShare() throws {
        let server = try RedisServer()
        let a = try budget(server, namespace: "one", rpm: 3, window: 10)
        let b = try budget(server, namespace: "two", rpm: 3, window: 10)
        let now = monotonicSeconds()
        for _ in 0..<3 {
            XCTAssertTrue(a.takeRequest(now: now))
            XCTAssertTrue(b.takeRequest(now: now))
        }
        XCTAssertFalse(a.takeRequest(now: now))
        XCTAssertFalse(b.takeRequest(now: now))
    }

    /// Redis stalls (DEBUG SLEEP) or stops: the client says so once, goes on with its fair
    /// local share (the shares of the live clients add up to the limits), and returns to the
    /// shared budget when Redis answers again.
    func testOutageFallsBackToAFairShareAndComesBack() throws {
        let server = try RedisServer()
        let logs = (0..<3).map { _ in Lines() }
        let clients = try logs.map { try budget(server, rpm: 10, window: 30, slots: 10, log: $0) }
        var now = monotonicSeconds()
        for c in clients { _ = c.tick(now: now) }
        now += 1
        for c in clients { _ = c.tick(now: now) }  // each has seen the three live clients

        // A stall longer than the call timeout.
        let slept = DispatchSemaphore(value: 0)
        Thread {
            _ = try? server.cli(["DEBUG", "SLEEP", "1"])
            slept.signal()
        }.start()
        usleep(100_000)
        now = monotonicSeconds()
        var local = 0
        for c in clients {
            while c.takeRequest(now: now) { local += 1 }
        }
        XCTAssertEqual(local, 10, "the local shares add up to the limit")
        var slots = 0
        for c in clients {
            while c.takeSlot(now: now, hold: 5) != nil { slots += 1 }
        }
        XCTAssertEqual(slots, 0, "the request shares are spent, so no submit slot either")
        for l in logs { XCTAssertTrue(l.contains("going on with a local share")) }
        XCTAssertEqual(slept.wait(timeout: .now() + 30), .success, "DEBUG SLEEP 1 ended")

        // Back: the next probe reconnects.
        usleep(600_000)
        now = monotonicSeconds()
        for c in clients { _ = c.tick(now: now + 1) }
        for c in clients { _ = c.tick(now: now + 2) }  // every client has seen the others again
        for l in logs { XCTAssertTrue(l.contains("reachable again"), l.all.joined(separator: "\n")) }

        server.stop()
        let c = clients[0]
        now = monotonicSeconds() + 100
        XCTAssertFalse(c.takeRequest(now: now) && c.takeRequest(now: now) && c.takeRequest(now: now) && c.takeRequest(now: now) && c.takeRequest(now: now),
                       "down again: at most its share of 10 among 3 (4)")
    }
}
