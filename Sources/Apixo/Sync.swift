import Glibc

/// A pthread mutex. Not recursive. Public for Swift hosts (the CLI) that need one.
public final class Mutex: @unchecked Sendable {
    let raw: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        raw = .allocate(capacity: 1)
        raw.initialize(to: pthread_mutex_t())
        pthread_mutex_init(raw, nil)
    }

    deinit {
        pthread_mutex_destroy(raw)
        raw.deallocate()
    }

    public func lock() { pthread_mutex_lock(raw) }
    public func unlock() { pthread_mutex_unlock(raw) }

    @discardableResult
    public func with<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A condition variable on the monotonic clock, used with one `Mutex`.
public final class Condition: @unchecked Sendable {
    let raw: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        raw = .allocate(capacity: 1)
        raw.initialize(to: pthread_cond_t())
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(raw, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(raw)
        raw.deallocate()
    }

    public func signal() { pthread_cond_signal(raw) }
    public func broadcast() { pthread_cond_broadcast(raw) }

    /// Waits with `mutex` held. `deadline` is monotonic seconds; nil waits without limit.
    /// Returns false when the deadline passed.
    @discardableResult
    public func wait(_ mutex: Mutex, until deadline: Double?) -> Bool {
        guard let deadline else {
            pthread_cond_wait(raw, mutex.raw)
            return true
        }
        let now = monotonicSeconds()
        if deadline <= now { return false }
        var ts = timespec()
        let whole = deadline.rounded(.down)
        ts.tv_sec = Int(whole)
        ts.tv_nsec = Int((deadline - whole) * 1e9)
        return pthread_cond_timedwait(raw, mutex.raw, &ts) == 0
    }
}

/// A one-shot result slot a blocking caller waits on while another thread fulfils it; or,
/// for an `async` caller, one that hands the first value to `onFulfill` (which resumes a
/// continuation) instead of being waited on. `@unchecked Sendable`: `value` is read and
/// written under `mutex` only; `onFulfill` is immutable.
final class Waiter<T>: @unchecked Sendable {
    private let mutex = Mutex()
    private let cond = Condition()
    private var value: T?
    private let onFulfill: ((T) -> Void)?

    init(onFulfill: ((T) -> Void)? = nil) {
        self.onFulfill = onFulfill
    }

    /// Stores the first value and wakes the waiter; later values are ignored.
    func fulfill(_ v: T) {
        let first = mutex.with { () -> Bool in
            guard value == nil else { return false }
            value = v
            cond.broadcast()
            return true
        }
        if first { onFulfill?(v) }
    }

    /// The value, or nil when `deadline` (monotonic seconds) passed first.
    func wait(until deadline: Double?) -> T? {
        mutex.with {
            while value == nil {
                if !cond.wait(mutex, until: deadline) && value == nil { return nil }
            }
            return value
        }
    }
}

private final class ThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a joinable pthread running `body`.
public func startThread(_ body: @escaping () -> Void) -> pthread_t {
    let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var tid = pthread_t()
    let rc = pthread_create(&tid, nil, { arg in
        let b = Unmanaged<ThreadBody>.fromOpaque(arg!).takeRetainedValue()
        b.body()
        return nil
    }, box)
    precondition(rc == 0, "apixo: pthread_create failed (\(rc))")
    return tid
}

/// Monotonic time in seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Wall-clock time in Unix milliseconds.
public func wallMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// The time source of the scheduling logic; tests substitute a fake. Read from the engine
/// thread and from the threads that run callbacks, hence Sendable.
public protocol Clock: AnyObject, Sendable {
    /// Monotonic seconds.
    var now: Double { get }
}

/// The real monotonic clock.
public final class SystemClock: Clock, Sendable {
    public init() {}
    public var now: Double { monotonicSeconds() }
}

/// Which registered callbacks have not fired yet, so that drain can wait for exactly those
/// registered before it was called; and what each registration carries to its delivery
/// (the host's user data, whether it has a callback at all). Each waiting drain keeps a
/// countdown of the tickets it waits for: a fired ticket costs O(drains), a wake-up O(1),
/// whatever the number pending.
final class CallbackLedger {
    struct Registration {
        var userData: UInt = 0
        var hasCallback = true
    }

    /// One drain's countdown: the tickets up to `upTo` that have not fired.
    final class DrainWait {
        let upTo: Int
        fileprivate(set) var left: Int
        fileprivate init(upTo: Int, left: Int) {
            self.upTo = upTo
            self.left = left
        }
    }

    private let mutex = Mutex()
    private let cond = Condition()
    private var last = 0
    private var pending: [Int: Registration] = [:]
    private var drains: [DrainWait] = []
    /// Called (outside the lock) whenever a ticket settles: the queue delivery's drain waits on it.
    var onChange: (() -> Void)?

    func register(userData: UInt = 0, hasCallback: Bool = true) -> Int {
        mutex.with {
            last += 1
            pending[last] = Registration(userData: userData, hasCallback: hasCallback)
            return last
        }
    }

    /// What ticket was registered with (the defaults once it settled).
    func registration(_ ticket: Int) -> Registration {
        mutex.with { pending[ticket] ?? Registration() }
    }

    /// Idempotent: a ticket fires once.
    func fired(_ ticket: Int) {
        let changed = mutex.with { () -> Bool in
            guard pending.removeValue(forKey: ticket) != nil else { return false }
            var done = false
            for d in drains where ticket <= d.upTo {
                d.left -= 1
                if d.left == 0 { done = true }
            }
            if done { cond.broadcast() }
            return true
        }
        if changed { onChange?() }
    }

    var outstanding: Int { mutex.with { pending.count } }

    /// Starts counting down the tickets issued so far (every pending one was issued before
    /// now); `endDrain` stops it.
    func beginDrain() -> DrainWait {
        mutex.with {
            let d = DrainWait(upTo: last, left: pending.count)
            drains.append(d)
            return d
        }
    }

    /// How many of the drain's tickets have not fired.
    func left(_ d: DrainWait) -> Int { mutex.with { d.left } }

    func endDrain(_ d: DrainWait) {
        mutex.with { drains.removeAll { $0 === d } }
    }

    /// Waits until every ticket issued so far has fired; returns how many are still pending
    /// when `deadline` (monotonic seconds) passes first.
    func wait(until deadline: Double?) -> Int {
        let d = beginDrain()
        defer { endDrain(d) }
        return mutex.with {
            while d.left > 0 {
                if !cond.wait(mutex, until: deadline), d.left > 0 { return d.left }
            }
            return 0
        }
    }
}

/// The largest delay between a terminal answer (its outcome handed to delivery) and its
/// callback starting: a diagnostic for tests and benchmarks (issue #14's stall).
/// Sendable: every field is read and written under `mutex` only.
final class LagMeter: @unchecked Sendable {
    private let mutex = Mutex()
    private var worst: Double = 0
    private var samples = 0

    func record(_ lag: Double) {
        mutex.with {
            worst = max(worst, lag)
            samples += 1
        }
    }

    /// The largest lag seen (seconds) and how many were measured.
    var reading: (worst: Double, samples: Int) { mutex.with { (worst, samples) } }
}
