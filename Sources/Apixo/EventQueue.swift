import Glibc

/// The queue-mode Delivery: nothing of the host runs on a library thread. Completions and log
/// lines wait here; a pipe's read end is readable while at least one waits (level-triggered:
/// one byte is written when the queue becomes non-empty and read back when it becomes empty
/// again, always under the queue's lock; the host never reads it). The host's own threads run them (`dispatch`, `runOneCallback`, `stop`)
/// or take them (`next`).
final class EventQueue: Delivery {
    /// Log lines waiting at most; more are dropped and counted.
    static let logCapacity = 1024

    enum Item {
        case completion(Completion)
        case log(LogLevel, String, LogSink)
    }

    enum Taken {
        case item(Item)
        case timeout
        case closed
    }

    /// Readable while the queue is not empty. Owned: closed when the queue goes away.
    let fd: Int32
    private let writeEnd: Int32
    private let mutex = Mutex()
    private let cond = Condition()
    private var items: [Item] = []
    private var head = 0
    private var waitingLogs = 0
    private var droppedLogs: UInt64 = 0
    private var closed = false
    /// Moves on whenever something waits, leaves or finishes running (for drain).
    private var changes: UInt64 = 0
    /// Threads running one of our callbacks right now.
    private var runners: [pthread_t] = []

    init() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw ApixoError(.io, "pipe: \(String(cString: strerror(errno)))") }
        for e in ends {
            _ = fcntl(e, F_SETFD, FD_CLOEXEC)
            _ = fcntl(e, F_SETFL, fcntl(e, F_GETFL) | O_NONBLOCK)
        }
        fd = ends[0]
        writeEnd = ends[1]
    }

    deinit {
        Glibc.close(fd)
        Glibc.close(writeEnd)
    }

    func start() {}

    var isDeliveryThread: Bool {
        let me = pthread_self()
        return mutex.with { runners.contains { pthread_equal($0, me) != 0 } }
    }

    /// Log lines dropped because `logCapacity` lines were already waiting.
    var dropped: UInt64 { mutex.with { droppedLogs } }

    /// How far the queue has moved (see `waitForChange`).
    var generation: UInt64 { mutex.with { changes } }

    func complete(_ c: Completion) {
        mutex.with { append(.completion(c)) }
        // Without a callback, waiting here settles it for drain: the host takes it when it likes.
        if c.callback == nil { c.release() }
    }

    func log(_ level: LogLevel, _ message: String, _ sink: @escaping LogSink) {
        mutex.with {
            if closed { return }
            guard waitingLogs < EventQueue.logCapacity else {
                droppedLogs += 1
                return
            }
            waitingLogs += 1
            append(.log(level, message, sink))
        }
    }

    /// Runs up to `max` events on the calling thread, waiting until `deadline` (monotonic
    /// seconds; nil: none; in the past: no wait) for the first. A completion runs its
    /// callback (none: it is consumed), a log line calls the logger.
    /// - Throws: `.closed` when the client closes before anything ran.
    func dispatch(max: Int, until deadline: Double?) throws -> Int {
        var ran = 0
        var until = deadline
        while ran < max {
            switch take(until: until, { _ in true }) {
            case .item(let item):
                run(item)
                ran += 1
            case .timeout:
                return ran
            case .closed:
                if ran == 0 { throw ApixoError(.closed, "the client is closed") }
                return ran
            }
            until = 0
        }
        return ran
    }

    /// Takes the next event without running anything; a completion counts as delivered now.
    func next(until deadline: Double?) -> Taken {
        let got = take(until: deadline, { _ in true })
        if case .item(.completion(let c)) = got { c.finish() }
        return got
    }

    /// Runs the first waiting completion that has a callback (log lines and completions
    /// without one keep their places). False when there is none.
    func runOneCallback() -> Bool {
        guard case .item(let item) = take(until: 0, { if case .completion(let c) = $0 { return c.callback != nil } else { return false } })
        else { return false }
        run(item)
        return true
    }

    /// Waits until the queue moved past `since` (an event came or went, a callback
    /// returned, `bump`) or `deadline` passed. False on the deadline.
    @discardableResult
    func waitForChange(since: UInt64, until deadline: Double?) -> Bool {
        mutex.with {
            while changes == since {
                if !cond.wait(mutex, until: deadline) { return changes != since }
            }
            return true
        }
    }

    /// Wakes `waitForChange` (a drain ticket settled elsewhere).
    func bump() {
        mutex.with {
            changes &+= 1
            cond.broadcast()
        }
    }

    /// Wakes every waiting taker with `.closed`, runs on the calling thread every waiting
    /// completion that has a callback (the final `.closed` ones among them), and drops the
    /// rest: log lines, and completions without a callback (not recorded as delivered: with a
    /// journal the next resume delivers them again).
    func stop() {
        let left: [Item] = mutex.with {
            closed = true
            let rest = Array(items[head...])
            items.removeAll()
            head = 0
            waitingLogs = 0
            clearReadable()
            changes &+= 1
            cond.broadcast()
            return rest
        }
        for item in left {
            if case .completion(let c) = item, c.callback != nil { run(item) }
        }
    }

    // MARK: under the lock

    private var count: Int { items.count - head }

    private func append(_ item: Item) {
        if count == 0 {
            var one: UInt8 = 1
            _ = write(writeEnd, &one, 1)
        }
        items.append(item)
        changes &+= 1
        cond.broadcast()
    }

    private func clearReadable() {
        var byte: UInt8 = 0
        _ = read(fd, &byte, 1)
    }

    private func remove(at i: Int) -> Item {
        let item = items[i]
        if i == head {
            head += 1
        } else {
            items.remove(at: i)
        }
        if head == items.count {
            items.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        if case .log = item { waitingLogs -= 1 }
        if count == 0 { clearReadable() }
        changes &+= 1
        cond.broadcast()
        return item
    }

    private func take(until deadline: Double?, _ pick: (Item) -> Bool) -> Taken {
        mutex.with {
            while true {
                if let i = items[head...].firstIndex(where: pick) { return .item(remove(at: i)) }
                if closed { return .closed }
                if !cond.wait(mutex, until: deadline) {
                    if let i = items[head...].firstIndex(where: pick) { return .item(remove(at: i)) }
                    return closed ? .closed : .timeout
                }
            }
        }
    }

    // MARK: on the host's thread

    private func run(_ item: Item) {
        let me = pthread_self()
        mutex.with { runners.append(me) }
        switch item {
        case .completion(let c): c.run()
        case .log(let level, let message, let sink): sink(level, message)
        }
        mutex.with {
            if let i = runners.firstIndex(where: { pthread_equal($0, me) != 0 }) { runners.remove(at: i) }
            changes &+= 1
            cond.broadcast()
        }
    }
}
