/// One concurrency slot held for one task (or a submit in flight).
struct SlotLease: Hashable {
    let id: UInt64
}

/// The account's budget as the scheduler sees it: request tokens and concurrency slots.
/// Implementations that talk to a server (Redis) bound every call and fall back to a local
/// budget on failure; they never throw. All times are seconds on the scheduler's clock;
/// every method is called on the engine thread only (or a simulation loop).
protocol Budget: AnyObject {
    /// Requests per window (0 = unlimited), the window in seconds (time-scaled, with margin),
    /// concurrency slots (0 = unlimited): the account's limits as this client applies them.
    var requestsPerWindow: Int { get }
    var window: Double { get }
    var maxSlots: Int { get }
    /// The requests per window this client plans its polls for (0 = unlimited): the whole
    /// budget for a local one; for a shared one, this client's share among the live clients,
    /// so that N clients do not each plan for the whole account and crowd out each other's
    /// submits. (Added to the fixed seams.)
    var requestShare: Int { get }
    /// Earliest time >= now at which one more API request may be sent.
    func nextRequestTime(now: Double) -> Double
    /// The same for a request that must leave `reserve` requests of the window unspent (a
    /// poll while submits wait, so that a freed slot is filled at once). Added to the seams
    /// with a default that ignores the reserve (a shared budget paces by its own rules).
    func nextRequestTime(now: Double, reserve: Int) -> Double
    /// Takes one request token at `now`; false when refused (a shared budget lost a race):
    /// the caller asks nextRequestTime again.
    func takeRequest(now: Double) -> Bool
    /// A 429: hold every request until `until` (the caller has already capped it).
    func pause(until: Double)
    /// Whether takeSlot could succeed now (cheap; may be approximate for a shared budget).
    func slotAvailable(now: Double) -> Bool
    /// Takes a slot for a task expected to end within `hold` seconds; nil when none is free.
    func takeSlot(now: Double, hold: Double) -> SlotLease?
    /// Counts a slot for a task that is already running on the server (taken up from a
    /// journal, or a submit whose answer was lost): never refused, even past `maxSlots`,
    /// because the server counts that task whether or not we do. (Added to the fixed seams.)
    func claimSlot(now: Double, hold: Double) -> SlotLease
    /// Keeps a lease alive while its task is tracked (a shared budget's leases expire;
    /// the local one does nothing).
    func renew(_ lease: SlotLease, now: Double, hold: Double)
    /// Gives a slot back; a lease released twice is released once.
    func release(_ lease: SlotLease, now: Double)
    /// Stats: requests in the current window; slots held by this client.
    func requestsInWindow(now: Double) -> Int
    var slotsHeld: Int { get }
    /// Housekeeping (heartbeats, renewals): returns when it next wants to run, nil if never.
    func tick(now: Double) -> Double?
}

extension Budget {
    func nextRequestTime(now: Double, reserve: Int) -> Double { nextRequestTime(now: now) }
}

/// The budget of one client on its own: a sliding window of requests with Retry-After
/// pauses (`RateLimiter`) and a count of concurrency slots.
final class LocalBudget: Budget {
    let limiter: RateLimiter
    let maxSlots: Int
    private var leases = Set<UInt64>()
    private var lastLease: UInt64 = 0

    /// `requestsPerWindow` per `window` seconds (0 = unlimited), `maxSlots` slots (0 = unlimited).
    init(requestsPerWindow: Int, window: Double, maxSlots: Int) {
        limiter = RateLimiter(capacity: requestsPerWindow, window: window)
        self.maxSlots = max(0, maxSlots)
    }

    var requestsPerWindow: Int { limiter.capacity }
    var requestShare: Int { limiter.capacity }
    var window: Double { limiter.window }
    var slotsHeld: Int { leases.count }

    func nextRequestTime(now: Double) -> Double { limiter.nextAvailable(now) }

    func nextRequestTime(now: Double, reserve: Int) -> Double { limiter.nextAvailable(now, reserve: reserve) }

    func takeRequest(now: Double) -> Bool {
        guard limiter.nextAvailable(now) <= now else { return false }
        limiter.record(now)
        return true
    }

    func pause(until: Double) { limiter.pause(until: until) }

    func slotAvailable(now: Double) -> Bool { maxSlots == 0 || leases.count < maxSlots }

    func takeSlot(now: Double, hold: Double) -> SlotLease? {
        guard slotAvailable(now: now) else { return nil }
        return claimSlot(now: now, hold: hold)
    }

    func claimSlot(now: Double, hold: Double) -> SlotLease {
        lastLease += 1
        leases.insert(lastLease)
        return SlotLease(id: lastLease)
    }

    func renew(_ lease: SlotLease, now: Double, hold: Double) {}

    func release(_ lease: SlotLease, now: Double) { leases.remove(lease.id) }

    func requestsInWindow(now: Double) -> Int { limiter.inWindow(now) }

    func tick(now: Double) -> Double? { nil }
}

/// A sliding-window request budget: at most `capacity` requests in any `window` seconds,
/// plus pauses the server asked for (Retry-After). Pure logic over caller-supplied times, so
/// tests drive it with a fake clock. Not thread-safe: the engine thread owns it.
final class RateLimiter {
    /// Requests per window; 0 means no limit.
    let capacity: Int
    /// The window in seconds (already time-scaled, plus a safety margin).
    let window: Double
    private var sent: [Double] = []   // send times inside the window, oldest first
    private var head = 0
    private(set) var pausedUntil: Double = 0

    init(capacity: Int, window: Double) {
        self.capacity = max(0, capacity)
        self.window = window
    }

    private func expire(_ now: Double) {
        while head < sent.count, sent[head] + window <= now { head += 1 }
        if head > 64, head * 2 > sent.count {
            sent.removeFirst(head)
            head = 0
        }
    }

    /// Requests counted in the window ending at `now`.
    func inWindow(_ now: Double) -> Int {
        expire(now)
        return sent.count - head
    }

    /// The earliest time at or after `now` when one more request may be sent, leaving
    /// `reserve` of the window's requests unspent (less than the capacity).
    func nextAvailable(_ now: Double, reserve: Int = 0) -> Double {
        var t = max(now, pausedUntil)
        guard capacity > 0 else { return t }
        expire(now)
        let used = sent.count - head
        let cap = capacity - min(max(0, reserve), capacity - 1)
        if used >= cap {
            // The request that must leave the window before another may go.
            t = max(t, sent[head + (used - cap)] + window)
        }
        return t
    }

    /// Counts a request sent at `now`.
    func record(_ now: Double) {
        guard capacity > 0 else { return }
        sent.append(now)
    }

    /// Holds every request until `until` (a Retry-After from the server).
    func pause(until: Double) {
        pausedUntil = max(pausedUntil, until)
    }
}

