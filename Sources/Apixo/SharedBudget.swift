/// The account's budget kept in Redis and shared by every client with the same URL and
/// namespace: in other processes and on other machines. Each grant is one atomic Lua script
/// (EVALSHA) whose times come from Redis (`TIME`), never from the clients' clocks.
///
/// - Rate: a sliding window of `requestsPerWindow` over `window` (the local limiter's margin)
///   in a sorted set of request ids scored by Redis time; a 429's pause is a key with a TTL.
/// - Slots: leases in a sorted set scored by their expiry, renewed by the heartbeat while the
///   holder tracks the task, released when it ends. A holder that dies loses its slots when
///   their leases expire, and a lease is never shorter than the time its task could still run.
/// - Fairness: a client waiting for a slot holds a FIFO ticket; only the first `free` tickets
///   may take one, so fast peers cannot starve a slow one.
/// - Redis unreachable or slow (every call is bounded by a short timeout): the client goes on
///   with a local budget of its fair share (the limits divided among the live clients it last
///   saw in the heartbeat set, by rank, so the shares add up to the limits exactly), says so
///   once in the log, and returns to the shared budget when Redis answers again.
///
/// Engine thread only, like every Budget.
final class SharedBudget: Budget {
    let requestsPerWindow: Int
    let window: Double
    let maxSlots: Int
    let url: RedisURL
    let namespace: String
    let clientID: String
    /// How often the heartbeat runs (and a client waiting for a slot tries again).
    let heartbeat: Double
    /// The shortest lease: a slot outlives a dead holder by at least this long.
    let minimumHold: Double

    private let logger: Logger
    private let timeoutMs: Int
    private var conn: RedisConnection?
    private var down = false
    private var nextReconnect = 0.0
    private var liveClients = 1
    private var rank = 0
    /// What the last heartbeat saw of all the clients: slots held, requests in the window.
    private var seenSlots = 0
    private var seenRequests = 0
    /// Taken when Redis went away: until `graceUntil` the tasks and requests of before the
    /// outage may still count on the server, so each client keeps to what it held then plus
    /// its share of what was free then; the allowances of all the clients add up to the limits.
    private var slotAllowance = 0
    private var requestAllowance = 0
    private var graceUntil = 0.0
    /// Just back from an outage: the shared grants and the local allowance both apply.
    private var settleUntil = 0.0
    private var nextHeartbeat = 0.0
    private var leaseSeq: UInt64 = 0
    private var requestSeq: UInt64 = 0
    private struct Lease {
        var member: String
        var hold: Double
    }
    private var leases: [SlotLease: Lease] = [:]
    private var pendingReleases: [String] = []
    /// A request token granted together with a slot, for the submit that took the slot.
    private var prefetchedToken = false
    /// Earliest time the shared window may grant again (from the last refusal).
    private var rateNotBefore = 0.0
    /// Earliest time to ask for a slot again after a refusal.
    private var slotNotBefore = 0.0
    /// When pending releases go out on their own if no grant has carried them.
    private var releaseDue = 0.0
    /// Tickets ahead of ours when a slot was last refused.
    private var slotRank = 0
    private var pausedUntil = 0.0
    /// This client's own sends, oldest first: stats, and the fallback's window.
    private var sends: [Double] = []
    private var sendsHead = 0
    /// Round trips to Redis (benchmarks).
    var roundTrips: Int { completedRoundTrips + (conn?.roundTrips ?? 0) }
    private var completedRoundTrips = 0
    /// The latest time any call was made with (pause(until:) carries no `now`).
    private var lastNow = 0.0

    init(url: RedisURL, namespace: String, requestsPerWindow: Int, window: Double, maxSlots: Int,
         scale: Double, timeoutMs: Int = 250, logger: Logger) {
        self.url = url
        self.namespace = namespace
        self.requestsPerWindow = max(0, requestsPerWindow)
        self.window = window
        self.maxSlots = max(0, maxSlots)
        self.timeoutMs = timeoutMs
        self.logger = logger
        heartbeat = max(0.01, 2.0 * scale)
        minimumHold = 120 * scale
        var rng = SystemRandomNumberGenerator()
        clientID = String(rng.next() as UInt64, radix: 16) + String(rng.next() as UInt64, radix: 16)
    }

    /// The default namespace: the account, identified by a hash of its API key (never the key).
    static func defaultNamespace(apiKey: String) -> String {
        "apixo:" + String(SHA256.hex("apixo-shared-budget:" + apiKey).prefix(32))
    }

    private func key(_ name: String) -> String { namespace + ":" + name }

    // MARK: Budget

    /// This client's share of the window among the live clients (at least one request).
    var requestShare: Int { requestsPerWindow == 0 ? 0 : max(1, localShare(of: requestsPerWindow)) }

    func nextRequestTime(now: Double) -> Double {
        lastNow = max(lastNow, now)
        var t = max(now, pausedUntil)
        if isLocal(now) || now < settleUntil {
            if let w = localWindowFull(now) { t = max(t, w) }
        }
        if !down { t = max(t, rateNotBefore) }
        return t
    }

    func takeRequest(now: Double) -> Bool {
        lastNow = max(lastNow, now)
        if prefetchedToken {
            prefetchedToken = false
            return true
        }
        guard nextRequestTime(now: now) <= now else { return false }
        if isLocal(now) {
            recordSend(now)
            return true
        }
        switch grant(now: now, slot: nil) {
        case .granted:
            recordSend(now)
            return true
        case .refused:
            return false
        case .unreachable:
            return takeRequest(now: now)
        }
    }

    func pause(until: Double) {
        pausedUntil = max(pausedUntil, until)
        let ms = Int(min(max(0, until - lastNow), 86_400) * 1000)
        guard ms > 0, !down else { return }
        let script = """
        local cur = redis.call('PTTL', KEYS[1])
        if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
        return 1
        """
        _ = call(lastNow) { try $0.eval(script, keys: [key("pause")], args: [String(ms)]) }
    }

    func slotAvailable(now: Double) -> Bool {
        lastNow = max(lastNow, now)
        if maxSlots == 0 { return true }
        if isLocal(now) { return leases.count < localSlots(now) }
        return now >= slotNotBefore && (now >= settleUntil || leases.count < localSlots(now))
    }

    func takeSlot(now: Double, hold: Double) -> SlotLease? {
        lastNow = max(lastNow, now)
        leaseSeq += 1
        let lease = SlotLease(id: leaseSeq)
        let held = Lease(member: clientID + ":" + String(leaseSeq), hold: max(hold, minimumHold))
        if maxSlots == 0 {
            leases[lease] = held
            return lease
        }
        if isLocal(now) {
            guard leases.count < localSlots(now), nextRequestTime(now: now) <= now else { return nil }
            recordSend(now)
            prefetchedToken = true
            leases[lease] = held
            return lease
        }
        guard now >= slotNotBefore, nextRequestTime(now: now) <= now,
              now >= settleUntil || leases.count < localSlots(now) else { return nil }
        switch grant(now: now, slot: held) {
        case .granted:
            recordSend(now)
            prefetchedToken = true
            leases[lease] = held
            return lease
        case .refused:
            return nil
        case .unreachable:
            return takeSlot(now: now, hold: hold)
        }
    }

    /// A task already running on the server: counted at once, without asking (the next
    /// heartbeat, brought forward, registers its lease in Redis).
    func claimSlot(now: Double, hold: Double) -> SlotLease {
        lastNow = max(lastNow, now)
        leaseSeq += 1
        let lease = SlotLease(id: leaseSeq)
        leases[lease] = Lease(member: clientID + ":" + String(leaseSeq), hold: max(hold, minimumHold))
        nextHeartbeat = min(nextHeartbeat, now)
        return lease
    }

    func renew(_ lease: SlotLease, now: Double, hold: Double) {
        leases[lease]?.hold = max(hold, minimumHold)
    }

    func release(_ lease: SlotLease, now: Double) {
        guard let l = leases.removeValue(forKey: lease) else { return }
        if maxSlots > 0 {
            if pendingReleases.isEmpty { releaseDue = now + heartbeat / 10 }
            pendingReleases.append(l.member)
            // A freed slot may serve this client's next submit at once: ask again now.
            slotNotBefore = 0
        }
    }

    func requestsInWindow(now: Double) -> Int {
        expireSends(now)
        return sends.count - sendsHead
    }

    var slotsHeld: Int { leases.count }

    /// Heartbeat: registers this client as live, renews its leases, sends pending releases,
    /// learns the number of live clients (the fallback's share); reconnects after an outage.
    func tick(now: Double) -> Double? {
        lastNow = max(lastNow, now)
        if now >= nextHeartbeat {
            if down && now < nextReconnect {
                nextHeartbeat = now + heartbeat
                return min(nextHeartbeat, nextReconnect)
            }
            sendHeartbeat(now)
        } else if !pendingReleases.isEmpty, now >= releaseDue {
            // Releases ride with the next grant; nothing was sent for a while: send them.
            sendHeartbeat(now)
        }
        if down { return min(nextHeartbeat, nextReconnect) }
        var wake = nextHeartbeat
        if !pendingReleases.isEmpty { wake = min(wake, releaseDue) }
        // A submit refused a slot asks again then.
        if slotNotBefore > now { wake = min(wake, slotNotBefore) }
        return wake
    }

    // MARK: Redis

    private enum Grant { case granted, refused, unreachable }

    /// The one script of the shared budget: every call is one EVALSHA of it, so a heartbeat
    /// rides along with a grant whenever one is due and a waiting client's slot attempt is its
    /// heartbeat.
    /// KEYS: 1 rate (request ids by Redis time), 2 pause (a 429's pause, with a TTL), 3 slots
    /// (leases by expiry), 4 queue (slot tickets by arrival), 5 seen (tickets by last attempt),
    /// 6 seq (ticket counter), 7 clients (by last heartbeat), 8 client ids (score 0: ranks by
    /// id, stable between heartbeats).
    /// ARGV: 1 capacity, 2 window, 3 request id ("": no request, a heartbeat only), 4 want a
    /// slot (0/1), 5 max slots, 6 lease id, 7 lease ms, 8 ticket, 9 ticket ttl, 10 heartbeat
    /// (0/1), 11 client ttl, 12 n, 13 m, then n pairs (lease, hold ms) to renew, m ages of this
    /// client's requests still in the window (restored after an outage: a restarted Redis knows
    /// nothing of them, the server still counts them), then the leases to release.
    /// Returns {granted, wait ms or ticket rank, why (0 ok, 1 paused, 2 rate, 3 slot), slots
    /// held by all, requests in the window of all, live clients, this client's rank}.
    private static let script = """
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local n = tonumber(ARGV[12])
    local m = tonumber(ARGV[13])
    for i = 14 + 2 * n + m, #ARGV do redis.call('ZREM', KEYS[3], ARGV[i]) end
    local live, rank = 0, 0
    if ARGV[10] == '1' then
      redis.call('ZADD', KEYS[7], now, ARGV[8])
      redis.call('ZADD', KEYS[8], 0, ARGV[8])
      local gone = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now - tonumber(ARGV[11]))
      for _, id in ipairs(gone) do
        redis.call('ZREM', KEYS[7], id)
        redis.call('ZREM', KEYS[8], id)
      end
      for i = 0, n - 1 do
        redis.call('ZADD', KEYS[3], now + tonumber(ARGV[15 + 2 * i]), ARGV[14 + 2 * i])
      end
      for i = 0, m - 1 do
        redis.call('ZADD', KEYS[1], now - tonumber(ARGV[14 + 2 * n + i]), ARGV[8] .. ':restored:' .. i)
      end
      if m > 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000) end
      live = redis.call('ZCARD', KEYS[8])
      rank = redis.call('ZRANK', KEYS[8], ARGV[8]) or 0
    end
    local cap = tonumber(ARGV[1])
    local win = tonumber(ARGV[2])
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - win)
    local function answer(ok, wait, why)
      return {ok, wait, why, redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[1]), live, rank}
    end
    if ARGV[3] == '' then return answer(0, 0, 0) end
    local pttl = redis.call('PTTL', KEYS[2])
    if pttl > 0 then return answer(0, pttl, 1) end
    local want = ARGV[4] == '1'
    local maxs = tonumber(ARGV[5])
    if want and maxs > 0 then
      local stale = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[9]))
      for _, s in ipairs(stale) do
        redis.call('ZREM', KEYS[4], s)
        redis.call('ZREM', KEYS[5], s)
      end
      if not redis.call('ZSCORE', KEYS[4], ARGV[8]) then
        redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[6]), ARGV[8])
      end
      redis.call('ZADD', KEYS[5], now, ARGV[8])
      local free = maxs - redis.call('ZCARD', KEYS[3])
      local ahead = redis.call('ZRANK', KEYS[4], ARGV[8])
      if ahead >= free then return answer(0, ahead, 3) end
    end
    if cap > 0 then
      if redis.call('ZCARD', KEYS[1]) >= cap then
        local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
        return answer(0, math.max(1, tonumber(oldest[2]) + win - now), 2)
      end
      redis.call('ZADD', KEYS[1], now, ARGV[3])
      redis.call('PEXPIRE', KEYS[1], win + 1000)
    end
    if want and maxs > 0 then
      redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[6])
      redis.call('ZREM', KEYS[4], ARGV[8])
      redis.call('ZREM', KEYS[5], ARGV[8])
    end
    return answer(1, 0, 0)
    """

    private func ms(_ seconds: Double) -> String {
        String(Int(min(max(0, seconds), 86_400 * 30) * 1000))
    }

    /// One run of the script: a request token (`request`), with a slot (`slot`), or neither
    /// (a heartbeat). The heartbeat part comes along whenever one is due.
    private func run(now: Double, request: Bool, slot: Lease?) -> Grant {
        let beat = !request || now >= nextHeartbeat
        if beat { nextHeartbeat = now + heartbeat }
        var id = ""
        if request {
            requestSeq += 1
            id = clientID + ":r" + String(requestSeq)
        }
        // A probe after an outage restores this client's requests still in the window.
        let restore: [Double] = beat && down ? Array(sends[sendsHead...]).filter { $0 + window > now } : []
        let renew = beat ? Array(leases.values) : []
        let releases = pendingReleases
        var args = [String(requestsPerWindow), ms(window), id, slot == nil ? "0" : "1", String(maxSlots),
                    slot?.member ?? "", ms(slot?.hold ?? 0), clientID, ms(heartbeat * 2.5),
                    beat ? "1" : "0", ms(heartbeat * 5), String(renew.count), String(restore.count)]
        for l in renew { args += [l.member, ms(l.hold)] }
        args += restore.map { ms(now - $0) }
        args += releases
        guard let r = call(now, { try $0.eval(SharedBudget.script,
                                              keys: ["rate", "pause", "slots", "queue", "seen", "seq", "clients",
                                                     "clientids"].map(key), args: args) }) else { return .unreachable }
        guard let a = r.array, a.count == 7, let ok = a[0].integer, let wait = a[1].integer, let why = a[2].integer,
              let slots = a[3].integer, let requests = a[4].integer, let live = a[5].integer, let me = a[6].integer else {
            unexpected(now, r)
            return .unreachable
        }
        pendingReleases.removeFirst(releases.count)
        if beat {
            liveClients = Int(max(1, min(live, 1_000_000)))
            rank = Int(max(0, min(me, 1_000_000)))
        }
        switch (ok, why) {
        case (1, _), (_, 0): break
        case (_, 1): pausedUntil = max(pausedUntil, now + Double(max(1, min(wait, 86_400_000))) / 1000)
        case (_, 2): rateNotBefore = now + Double(max(1, min(wait, 86_400_000))) / 1000
        default:
            // Waiting for a slot: ask again at the next heartbeat (the attempt is the
            // heartbeat), or sooner when an answer shows more free slots than tickets ahead.
            slotNotBefore = nextHeartbeat
            slotRank = Int(max(0, min(wait, 1_000_000)))
        }
        see(slots: slots, requests: requests)
        return ok == 1 ? .granted : .refused
    }

    private func grant(now: Double, slot: Lease?) -> Grant { run(now: now, request: true, slot: slot) }

    private func sendHeartbeat(_ now: Double) { _ = run(now: now, request: false, slot: nil) }

    /// The freshest view of all the clients (for the allowances of an outage, and to ask for a
    /// slot again as soon as one is free for us).
    private func see(slots: Int64, requests: Int64) {
        seenSlots = Int(max(0, min(slots, 1_000_000)))
        seenRequests = Int(max(0, min(requests, 1_000_000)))
        if slotNotBefore > 0, maxSlots - seenSlots > slotRank { slotNotBefore = 0 }
    }

    /// Runs one Redis operation; on failure switches to the local fallback (logged once).
    private func call(_ now: Double, _ op: (RedisConnection) throws -> RedisValue) -> RedisValue? {
        if conn == nil {
            if down && now < nextReconnect { return nil }
            do {
                conn = try RedisConnection(url, timeoutMs: timeoutMs)
            } catch let e as ApixoError {
                goDown(now, e.message)
                return nil
            } catch {
                goDown(now, "\(error)")
                return nil
            }
        }
        do {
            let r = try op(conn!)
            if case .error(let e) = r {
                dropConnection()
                goDown(now, "redis \(url.display): \(String(e.prefix(200)))")
                return nil
            }
            if down {
                down = false
                // The other clients come back within a heartbeat or two: until they have,
                // this client keeps to its local allowance as well.
                settleUntil = now + 2 * heartbeat
                logger.log(.warn, "shared budget: redis \(url.display) is reachable again; back on the shared budget")
                rateNotBefore = 0
                slotNotBefore = 0
            }
            return r
        } catch let e as ApixoError {
            dropConnection()
            goDown(now, e.message)
        } catch {
            dropConnection()
            goDown(now, "\(error)")
        }
        return nil
    }

    /// A reply of the wrong shape: treated like an outage (never trusted, never retried in a loop).
    private func unexpected(_ now: Double, _ r: RedisValue) {
        dropConnection()
        goDown(now, "redis \(url.display): unexpected reply to a budget script")
    }

    private func dropConnection() {
        completedRoundTrips += conn?.roundTrips ?? 0
        conn?.close()
        conn = nil
    }

    private func goDown(_ now: Double, _ why: String) {
        nextReconnect = now + heartbeat
        guard !down else { return }
        down = true
        graceUntil = now + max(minimumHold, window)
        slotAllowance = min(localShare(of: maxSlots),
                            leases.count + localShare(of: max(0, maxSlots - max(seenSlots, leases.count))))
        requestAllowance = min(localShare(of: requestsPerWindow),
                               requestsInWindow(now: now) + localShare(of: max(0, requestsPerWindow - max(seenRequests, requestsInWindow(now: now)))))
        logger.log(.warn, "shared budget: \(why); going on with a local share of the limits " +
                   "(\(localShare(of: requestsPerWindow)) requests, \(localShare(of: maxSlots)) slots of \(liveClients) live clients)")
    }

    // MARK: the local fallback

    /// True while Redis is down (and not yet due for another try).
    private func isLocal(_ now: Double) -> Bool {
        guard down else { return false }
        if now >= nextReconnect {
            // Probe: a heartbeat reconnects and, on success, clears `down`.
            nextHeartbeat = now + heartbeat
            sendHeartbeat(now)
        }
        return down
    }

    /// This client's share of `limit` among the live clients, by rank: the shares of all the
    /// live clients add up to the limit exactly, so every client falling back at once stays
    /// inside the account's limits. 0 (no limit) stays 0.
    private func localShare(of limit: Int) -> Int {
        guard limit > 0 else { return 0 }
        let n = max(1, liveClients)
        return limit / n + (rank < limit % n ? 1 : 0)
    }

    private func localSlots(_ now: Double) -> Int {
        now < graceUntil ? slotAllowance : localShare(of: maxSlots)
    }

    private func localWindowFull(_ now: Double) -> Double? {
        guard requestsPerWindow > 0 else { return nil }
        let share = now < graceUntil ? requestAllowance : localShare(of: requestsPerWindow)
        expireSends(now)
        let used = sends.count - sendsHead
        guard used >= share else { return nil }
        if share == 0 { return now + heartbeat }
        return sends[sendsHead + (used - share)] + window
    }

    private func recordSend(_ now: Double) {
        sends.append(now)
        expireSends(now)
    }

    private func expireSends(_ now: Double) {
        while sendsHead < sends.count, sends[sendsHead] + window <= now { sendsHead += 1 }
        if sendsHead > 64, sendsHead * 2 > sends.count {
            sends.removeFirst(sendsHead)
            sendsHead = 0
        }
    }
}
