import CApixoFork
import CCurl
import Glibc

/// A scheduled action on the engine thread; cancel by setting `cancelled`.
final class TimerToken {
    let due: Double
    let seq: UInt64
    /// Dropped once the timer fires or is cancelled: the closures hold tasks and the client,
    /// and a token held by a task must not keep that cycle alive.
    private(set) var action: (() -> Void)?
    /// Runs instead of `action` when the engine stops first (a blocked caller gets `.closed`).
    private(set) var onStop: (() -> Void)?
    var cancelled = false {
        didSet {
            if cancelled {
                action = nil
                onStop = nil
            }
        }
    }

    init(due: Double, seq: UInt64, onStop: (() -> Void)? = nil, action: @escaping () -> Void) {
        self.due = due
        self.seq = seq
        self.onStop = onStop
        self.action = action
    }
}

/// A binary min-heap ordered by `less`.
struct Heap<T> {
    private(set) var items: [T] = []
    let less: (T, T) -> Bool

    init(less: @escaping (T, T) -> Bool) { self.less = less }

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var first: T? { items.first }

    mutating func push(_ x: T) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !less(items[i], items[p]) { break }
            items.swapAt(i, p)
            i = p
        }
    }

    @discardableResult
    mutating func pop() -> T? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < items.count, less(items[l], items[m]) { m = l }
            if r < items.count, less(items[r], items[m]) { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }
}

private let curlGlobalInit: Bool = {
    curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK
}()

/// One thread that drives every transfer of a client through curl multi, runs timers and the
/// work posted from other threads. Sleeps in curl_multi_poll when idle; other threads wake it
/// with curl_multi_wakeup.
final class Engine {
    private let multi: UnsafeMutableRawPointer
    private let caFile: String?
    private let postLock = Mutex()
    private var posted: [() -> Void] = []
    private var stopRequested = false
    private var stopped = false
    private var thread: pthread_t?

    // Engine-thread state.
    private var timers = Heap<TimerToken>(less: { $0.due < $1.due || ($0.due == $1.due && $0.seq < $1.seq) })
    private var timerSeq: UInt64 = 0
    private var transfers: [UnsafeMutableRawPointer: Transfer] = [:]
    /// Requests waiting for one of the `maxTransfers` places, in order.
    private var waiting = Deque<(HTTPRequest, (HTTPResult) -> Void)>()
    let clock: Clock
    /// Transfers handed to curl at once: its connection limit per host. Curl would queue
    /// more itself, but a transfer it holds back for a connection can sit there until its
    /// connect timeout (15 s) before it is looked at again; the engine queues them instead.
    static let maxTransfers = 16
    /// The longest a transfer took from the hand-over to curl to its end, in seconds (a
    /// diagnostic for tests: a stalled transfer shows here).
    private(set) var longestTransfer: Double = 0
    /// The most transfers curl held at once (a diagnostic: never above `maxTransfers`).
    private(set) var peakTransfers = 0

    init(caFile: String?, clock: Clock) throws {
        guard curlGlobalInit, let m = curl_multi_init() else {
            throw ApixoError(.noMemory, "libcurl could not be initialised")
        }
        multi = m
        self.caFile = caFile
        self.clock = clock
        // Reuse connections to the API; a few per host is plenty.
        _ = apixo_curl_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, Engine.maxTransfers)
        _ = apixo_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, 32)
    }

    deinit {
        curl_multi_cleanup(multi)
    }

    func start() {
        thread = startThread { [self] in run() }
    }

    /// Runs `work` on the engine thread soon. Safe from any thread. False (and `work` is
    /// dropped) once the loop has ended.
    @discardableResult
    func post(_ work: @escaping () -> Void) -> Bool {
        let accepted = postLock.with { () -> Bool in
            if stopped { return false }  // after the loop ended, work would only leak
            posted.append(work)
            return true
        }
        if accepted { curl_multi_wakeup(multi) }
        return accepted
    }

    /// Asks the loop to finish after the posted work; joins the thread.
    func stop() {
        postLock.with { stopRequested = true }
        curl_multi_wakeup(multi)
        if let t = thread {
            pthread_join(t, nil)
            thread = nil
        }
    }

    /// Schedules `action` after `delay` seconds (engine thread only). `onStop` runs instead
    /// when the engine stops before then: a timer a blocked call waits on must say how to wake it.
    @discardableResult
    func after(_ delay: Double, orOnStop onStop: (() -> Void)? = nil, _ action: @escaping () -> Void) -> TimerToken {
        timerSeq += 1
        let t = TimerToken(due: clock.now + max(0, delay), seq: timerSeq, onStop: onStop, action: action)
        timers.push(t)
        return t
    }

    /// Starts a transfer (engine thread only), or queues it while `maxTransfers` run.
    /// `completion` runs on the engine thread.
    func start(_ request: HTTPRequest, completion: @escaping (HTTPResult) -> Void) {
        if transfers.count >= Engine.maxTransfers {
            waiting.append((request, completion))
            return
        }
        launch(request, completion: completion)
    }

    /// Transfers running, and waiting for a place.
    var transferCounts: (running: Int, waiting: Int) { (transfers.count, waiting.count) }

    private func launch(_ request: HTTPRequest, completion: @escaping (HTTPResult) -> Void) {
        guard let t = Transfer(request, caFile: caFile, completion: completion) else {
            var r = HTTPResult()
            r.curlCode = CURLE_OUT_OF_MEMORY
            r.curlMessage = "curl_easy_init failed"
            completion(r)
            return
        }
        let rc = curl_multi_add_handle(multi, t.easy)
        if rc != CURLM_OK {
            var r = HTTPResult()
            r.curlCode = CURLE_FAILED_INIT
            r.curlMessage = String(cString: curl_multi_strerror(rc))
            completion(r)
            return
        }
        t.startedAt = clock.now
        transfers[t.easy] = t
        peakTransfers = max(peakTransfers, transfers.count)
        if request.idleTimeout { watch(t, seen: -1, since: clock.now) }
    }

    /// A transfer left curl: its place goes to the next waiting request.
    private func ended(_ t: Transfer, _ r: HTTPResult) {
        longestTransfer = max(longestTransfer, clock.now - t.startedAt)
        t.completion(r)
        while transfers.count < Engine.maxTransfers, let (req, completion) = waiting.removeFirst() {
            launch(req, completion: completion)
        }
    }

    /// Ends a transfer that has received nothing for its timeout (see `HTTPRequest.idleTimeout`).
    private func watch(_ t: Transfer, seen: Int, since: Double) {
        let limit = Double(t.request.timeoutMs) / 1000
        after(min(limit, 0.25)) { [weak self, weak t] in
            guard let self, let t, self.transfers[t.easy] === t else { return }
            let now = self.clock.now
            if t.receivedBytes != seen {
                self.watch(t, seen: t.receivedBytes, since: now)
            } else if now - since >= limit {
                self.transfers[t.easy] = nil
                curl_multi_remove_handle(self.multi, t.easy)
                var r = t.finish(CURLE_OPERATION_TIMEDOUT)
                r.curlMessage = "no data for \(t.request.timeoutMs) ms"
                r.idleTimedOut = true
                self.ended(t, r)
            } else {
                self.watch(t, seen: seen, since: since)
            }
        }
    }

    /// Ends every transfer with `aborted` set (engine thread only, at shutdown).
    func abortAll() {
        var queued: [(HTTPRequest, (HTTPResult) -> Void)] = []
        while let w = waiting.removeFirst() { queued.append(w) }
        let all = Array(transfers.values)
        transfers.removeAll()
        for t in all {
            curl_multi_remove_handle(multi, t.easy)
            var r = t.finish(CURLE_ABORTED_BY_CALLBACK)
            r.aborted = true
            t.completion(r)
        }
        for (_, completion) in queued {
            var r = HTTPResult()
            r.curlCode = CURLE_ABORTED_BY_CALLBACK
            r.curlMessage = "the client closed"
            r.aborted = true
            completion(r)
        }
    }

    private func run() {
        // fork() waits until no engine is between these two (Sources/CApixoFork/fork.c).
        apx_engine_busy()
        defer { apx_engine_idle() }
        while true {
            let work: [() -> Void]
            var stopping = false
            postLock.lock()
            work = posted
            posted.removeAll()
            stopping = stopRequested
            if stopping && work.isEmpty { stopped = true }
            postLock.unlock()
            for w in work { w() }
            if stopping && work.isEmpty {
                abortAll()
                // Timers hold closures that hold the client: drop them, or the client and
                // everything it owns would outlive apixo_client_free. A caller waiting on one
                // is woken by its onStop.
                while let t = timers.pop() {
                    let stop = t.onStop
                    t.cancelled = true
                    stop?()
                }
                return
            }
            runDueTimers()
            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            collectFinished()
            runDueTimers()

            var waitMs = 3_600_000
            if let next = timers.first {
                waitMs = min(waitMs, Bounded.wholeMillis(next.due - clock.now))
            }
            var curlTimeout = -1
            curl_multi_timeout(multi, &curlTimeout)
            if curlTimeout >= 0 { waitMs = min(waitMs, curlTimeout) }
            let pending = postLock.with { !posted.isEmpty || stopRequested }
            if pending { waitMs = 0 }
            if waitMs > 0 {
                var numfds: Int32 = 0
                apx_engine_idle()
                curl_multi_poll(multi, nil, 0, Int32(waitMs), &numfds)
                apx_engine_busy()
            }
        }
    }

    private func collectFinished() {
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
            let code = msg.pointee.data.result
            curl_multi_remove_handle(multi, easy)
            if let t = transfers.removeValue(forKey: easy) { ended(t, t.finish(code)) }
        }
    }

    private func runDueTimers() {
        while let t = timers.first, t.due <= clock.now {
            timers.pop()
            if !t.cancelled, let action = t.action {
                t.cancelled = true  // fired: release the closure
                action()
            }
        }
        // Drop cancelled timers at the top so they do not shorten the sleep.
        while let t = timers.first, t.cancelled { timers.pop() }
    }
}
