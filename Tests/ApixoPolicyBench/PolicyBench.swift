import Glibc
@testable import Apixo

// The policy simulator behind `make bench-policy`: the real Scheduler with LocalBudget and a
// poll policy, driven by a fake clock in simulated time against generated workloads, next to
// the zero-delay bound and an oracle poll policy that knows the true distribution. Times are
// API seconds (time scale 1). Deterministic: the same seed gives the same figures.

/// A small deterministic generator (SplitMix64).
struct BenchRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 &+ 0x1234_5678 }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * unit() }
    mutating func gauss() -> Double {
        let u = max(unit(), 1e-300), v = unit()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }
}

/// One task of a workload: its key, its true duration (submit to completion) and the
/// population it was drawn from (what an oracle may know of it).
struct BenchTask {
    var key: String
    var duration: Double
    var population: Int
}

/// A latency workload, as the simulator's `--latency` kinds draw them (queue wait 0.5 to 2 s,
/// then processing).
struct Workload {
    var name: String
    var callbackMode = false
    /// Populations: key and a draw of the total duration.
    var populations: [(key: String, draw: (inout BenchRandom) -> Double)]
    /// Which population the index-th task (0-based) comes from.
    var choose: (Int, inout BenchRandom) -> Int
    /// Populations chosen by a hidden coin, with these weights: nobody, the oracle included,
    /// can tell them apart, so the oracle knows only their mixture. Otherwise the population
    /// follows from what a client sees (the key, the submit order).
    var hiddenMix: [Double]? = nil

    func tasks(_ n: Int, seed: UInt64) -> [BenchTask] {
        var r = BenchRandom(seed: seed)
        return (0..<n).map { i in
            let p = choose(i, &r)
            return BenchTask(key: populations[p].key, duration: populations[p].draw(&r), population: p)
        }
    }

    static let key2K = "seedream-5-0|2K"
    static func queue(_ r: inout BenchRandom) -> Double { r.uniform(0.5, 2) }
    static func uniformDraw(_ lo: Double, _ hi: Double) -> (inout BenchRandom) -> Double {
        { r in queue(&r) + r.uniform(lo, hi) }
    }

    static let uniform = Workload(name: "uniform 25-35 s", populations: [(key2K, uniformDraw(25, 35))],
                                  choose: { _, _ in 0 })
    static let drift = Workload(name: "drift x2 from task 40",
                                populations: [(key2K, uniformDraw(25, 35)),
                                              (key2K, { r in 2 * (queue(&r) + r.uniform(25, 35)) })],
                                choose: { i, _ in i + 1 >= 40 ? 1 : 0 })
    static let lognormal = Workload(name: "lognormal median 30 s, sigma 0.35",
                                    populations: [(key2K, { r in queue(&r) + min(3600, 30 * exp(0.35 * r.gauss())) })],
                                    choose: { _, _ in 0 })
    static let bimodal = Workload(name: "bimodal 25-35 / 35-50 s",
                                  populations: [(key2K, uniformDraw(25, 35)), (key2K, uniformDraw(35, 50))],
                                  choose: { _, r in r.unit() < 0.5 ? 1 : 0 }, hiddenMix: [0.5, 0.5])
    static let webhook = Workload(name: "webhook, uniform 25-35 s", callbackMode: true,
                                  populations: [(key2K, uniformDraw(25, 35))], choose: { _, _ in 0 })
    static let twoModels = Workload(name: "two models: 5.0 2K + 4.5 4K",
                                    populations: [(key2K, uniformDraw(25, 35)),
                                                  ("seedream-4-5|4K", uniformDraw(45, 60))],
                                    choose: { _, r in r.unit() < 0.5 ? 1 : 0 })
    static let all = [uniform, drift, lognormal, bimodal, webhook, twoModels]
}

/// The account and the simulated network.
struct BenchSetup {
    var tasks = 100
    var requestsPerMinute = 60
    var slots = 10
    /// Round trip of one request; the server acts half-way.
    var rtt = 0.1
    /// Completion to webhook arrival.
    var webhookDelay = 0.3
    /// The window as the client applies it (Client: 5% and 20 ms margin, at time scale 1).
    var clientWindow = 60 * 1.05 + 0.02
    /// Requests of the window polls leave to waiting submits (the Scheduler's default).
    var pollReserve = 1
}

/// What one simulated run gives.
struct RunResult {
    var makespan = 0.0
    var sumDurations = 0.0
    var requests = 0
    var peakWindow = 0
    var rejected429 = 0
    var completed = 0
    /// Sum over tasks of completion to the moment the client knows (poll answer or webhook).
    var detectionDelay = 0.0
    /// Sum over submits after the first wave of the wait from the completion seen to the submit.
    var submitLag = 0.0
}

final class BenchSubmit: QueuedSubmit {
    let index: Int
    init(index: Int, key: String) {
        self.index = index
        super.init(key: key)
    }
}

final class BenchTaskRecord: ScheduledTask {
    let index: Int
    var completeAt = 0.0
    var createdAt = 0.0
    init(index: Int, key: String, callbackMode: Bool) {
        self.index = index
        super.init(id: "task\(index)", key: key, callbackMode: callbackMode, origin: .submitted)
    }
}

/// An oracle's hook: told which task a poll decision is about before the scheduler asks.
protocol TaskAware: AnyObject {
    var currentTask: Int { get set }
}

/// Runs one workload's tasks through the real Scheduler with `policy`, in simulated time.
func simulate(_ specs: [BenchTask], callbackMode: Bool, policy: PollPolicy, setup: BenchSetup) -> RunResult {
    let budget = LocalBudget(requestsPerWindow: setup.requestsPerMinute, window: setup.clientWindow, maxSlots: setup.slots)
    let sched = Scheduler<BenchSubmit, BenchTaskRecord>(budget: budget, policy: policy, maxRetries: 3, scale: 1,
                                                        random: { 0.5 }, pollReserve: setup.pollReserve)
    let aware = policy as? TaskAware
    var result = RunResult()
    result.sumDurations = specs.reduce(0) { $0 + $1.duration }
    for (i, s) in specs.enumerated() { sched.enqueue(BenchSubmit(index: i, key: s.key)) }

    enum Event {
        case submitAnswer(BenchSubmit, accepted: Bool, createdAt: Double)
        case pollAnswer(BenchTaskRecord, done: Bool)
        case webhook(BenchTaskRecord)
    }
    var events = Heap<(at: Double, seq: Int, event: Event)>(less: { $0.at < $1.at || ($0.at == $1.at && $0.seq < $1.seq) })
    var seq = 0
    func push(_ at: Double, _ e: Event) {
        seq += 1
        events.push((at, seq, e))
    }
    // The server's view: request times (its true 60 s window) and running tasks' completions.
    var requestTimes: [Double] = []
    var serverRunning: [Double] = []
    var sentInWindow: [Double] = []
    func serverAccepts(_ at: Double) -> Bool {
        sentInWindow.removeAll { $0 <= at - 60 }
        guard sentInWindow.count < setup.requestsPerMinute else { return false }
        sentInWindow.append(at)
        return true
    }

    var freedAt: [Double] = []
    var submitted = 0
    var now = 0.0
    var done = 0
    var steps = 0
    /// The client learns that `t` is done (a poll answer or a webhook) at `now`.
    func seen(_ t: BenchTaskRecord) {
        sched.observe(key: t.key, duration: t.completeAt - t.createdAt)
        sched.finish(t, terminal: true, now: now)
        done += 1
        result.makespan = now
        result.detectionDelay += now - t.completeAt
        freedAt.append(now)
    }
    while done < specs.count, steps < 1_000_000 {
        steps += 1
        switch sched.next(now: now) {
        case .submit(let s):
            requestTimes.append(now)
            submitted += 1
            if submitted > setup.slots, !freedAt.isEmpty { result.submitLag += now - freedAt.removeFirst() }
            let at = now + setup.rtt / 2
            serverRunning.removeAll { $0 <= at }
            var ok = serverAccepts(at)
            if ok, serverRunning.count >= setup.slots { ok = false }
            if ok { serverRunning.append(at + specs[s.index].duration) } else { result.rejected429 += 1 }
            push(now + setup.rtt, .submitAnswer(s, accepted: ok, createdAt: at))
        case .poll(let t):
            requestTimes.append(now)
            let at = now + setup.rtt / 2
            if !serverAccepts(at) { result.rejected429 += 1 }
            push(now + setup.rtt, .pollAnswer(t, done: at >= t.completeAt))
        case .get, .forget:
            break
        case .wait(let wake):
            let nextEvent = events.first?.at
            let t: Double
            switch (wake, nextEvent) {
            case (nil, nil): t = .infinity
            case (let w?, nil): t = w
            case (nil, let e?): t = e
            case (let w?, let e?): t = min(w, e)
            }
            guard t.isFinite else { steps = 1_000_000; continue }
            now = max(now, t)
            while let e = events.first, e.at <= now {
                events.pop()
                switch e.event {
                case .submitAnswer(let s, let accepted, let createdAt):
                    if accepted {
                        let t = BenchTaskRecord(index: s.index, key: s.key, callbackMode: callbackMode)
                        t.createdAt = createdAt
                        t.completeAt = createdAt + specs[s.index].duration
                        aware?.currentTask = s.index
                        sched.submitAccepted(s, as: t, listening: true, now: now)
                        if callbackMode { push(t.completeAt + setup.webhookDelay, .webhook(t)) }
                    } else {
                        var err = ApixoError(.rateLimited, "429")
                        err.httpStatus = 429
                        err.retryAfter = 1
                        _ = sched.submitRefused(s, err, safe: true, now: now)
                    }
                case .pollAnswer(let t, let finished):
                    aware?.currentTask = t.index
                    guard sched.tasks[t.id] === t else { break }
                    if finished {
                        seen(t)
                    } else {
                        sched.running(t, serverAge: nil, isPoll: true, now: now)
                    }
                case .webhook(let t):
                    guard sched.tasks[t.id] === t else { break }
                    seen(t)
                }
            }
        }
    }
    result.completed = done
    result.requests = requestTimes.count
    var lo = 0
    for hi in requestTimes.indices {
        while requestTimes[lo] <= requestTimes[hi] - 60 { lo += 1 }
        result.peakWindow = max(result.peakWindow, hi - lo + 1)
    }
    return result
}

/// The zero-delay bound: list scheduling on `slots` slots, each task started the moment a
/// slot frees, every completion seen at once.
func zeroDelayMakespan(_ specs: [BenchTask], slots: Int) -> Double {
    var free = [Double](repeating: 0, count: max(1, slots))
    var end = 0.0
    for s in specs {
        var k = 0
        for i in free.indices where free[i] < free[k] { k = i }
        free[k] += s.duration
        end = max(end, free[k])
    }
    return end
}

/// A poll policy that knows the true distribution of every task (its population), not its
/// duration: the same DP and budget pricing as the learned one, on the exact distribution,
/// with the price scaled by `priceFactor` (the oracle's best factor is searched).
final class OraclePollPolicy: PollPolicy, TaskAware {
    var currentTask = 0
    let specs: [BenchTask]
    let grids: [DistributionGrid]
    let priceFactor: Double
    let targetShare: Double
    private var tables: [[Int: PollTable]]
    private var shift: Int { Int((log(priceFactor) / log(LearnedPollPolicy.priceRatio)).rounded()) }

    init(specs: [BenchTask], grids: [DistributionGrid], priceFactor: Double, targetShare: Double = 0.95) {
        self.specs = specs
        self.grids = grids
        self.priceFactor = priceFactor
        self.targetShare = targetShare
        tables = grids.map { _ in [:] }
    }

    private func table(_ p: Int, _ k: Int) -> PollTable {
        if let t = tables[p][k] { return t }
        let t = PollTable(grids[p], price: LearnedPollPolicy.minPrice * pow(LearnedPollPolicy.priceRatio, Double(k)),
                          minGap: 1, maxGap: 120)
        tables[p][k] = t
        return t
    }

    func observe(key: String, duration: Double) {}

    func nextPollDelay(_ ctx: PollContext) -> Double {
        let p = specs[min(max(0, currentTask), specs.count - 1)].population
        if ctx.callbackMode {
            // A webhook is certain here: poll only far past any plausible completion.
            return max(1, 2 * grids[p].conditionalQuantile(0.999, after: 0) - ctx.elapsed)
        }
        var k = LearnedPollPolicy.price(load: ctx.load, targetShare: targetShare, idlePriceFactor: 1) { table(p, $0) }
        k = min(LearnedPollPolicy.priceLevels - 1, max(0, k + shift))
        return max(1, table(p, k).nextPoll(after: ctx.elapsed) - ctx.elapsed)
    }

    func assumedRemaining(key: String, elapsed: Double) -> Double {
        let p = specs[min(max(0, currentTask), specs.count - 1)].population
        return max(0, grids[p].conditionalQuantile(0.999, after: elapsed) - elapsed)
    }

    func expectedDuration(key: String) -> Double { grids[0].mean }
}

/// The true distribution of each population of a workload as an oracle sees it, from many
/// draws: a hidden mixture is one distribution for all its populations.
func oracleGrids(_ w: Workload, draws: Int = 20000) -> [DistributionGrid] {
    var r = BenchRandom(seed: 0xA11CE)
    if let mix = w.hiddenMix {
        let total = mix.reduce(0, +)
        let xs = (0..<draws).map { _ -> Double in
            var u = r.unit() * total, p = 0
            while p < mix.count - 1, u >= mix[p] { u -= mix[p]; p += 1 }
            return w.populations[p].draw(&r)
        }
        let g = DistributionGrid.empirical(xs, step: 0.25)
        return w.populations.map { _ in g }
    }
    return w.populations.map { p in
        DistributionGrid.empirical((0..<draws).map { _ in p.draw(&r) }, step: 0.25)
    }
}

/// Mean figures of one policy over the seeds.
struct Summary {
    var ratio = 0.0        // makespan / (sum of durations / slots)
    var vsBound = 0.0      // makespan / zero-delay makespan
    var requestsPerTask = 0.0
    var peakWindow = 0
    var rejected = 0
    var incomplete = 0
    var makespan = 0.0
    var detectionDelay = 0.0   // mean per task
    var submitLag = 0.0        // mean per submit after the first wave
}

func summarize(_ runs: [(RunResult, Double)], setup: BenchSetup) -> Summary {
    var s = Summary()
    let n = Double(max(1, runs.count))
    for (r, bound) in runs {
        s.ratio += r.makespan / (r.sumDurations / Double(setup.slots)) / n
        s.vsBound += r.makespan / bound / n
        s.requestsPerTask += Double(r.requests) / Double(setup.tasks) / n
        s.makespan += r.makespan / n
        s.detectionDelay += r.detectionDelay / Double(max(1, r.completed)) / n
        s.submitLag += r.submitLag / Double(max(1, setup.tasks - setup.slots)) / n
        s.peakWindow = max(s.peakWindow, r.peakWindow)
        s.rejected += r.rejected429
        if r.completed < setup.tasks { s.incomplete += 1 }
    }
    return s
}

/// One row of the bench table.
struct BenchRow {
    var workload: String
    var webhook: Bool
    var bound: Double            // zero-delay makespan / (sum / slots)
    var learned: Summary
    /// nil when not run (APIXO_POLICY_BENCH_QUICK).
    var old: Summary?
    var oracle: Summary?
    var oracleFactor: Double
}

/// Runs every workload over `seeds` seeds: the learned policy, the old EWMA one, the oracle
/// (best price factor of `factors`).
func runPolicyBench(seeds: Int, setup: BenchSetup = BenchSetup(), workloads: [Workload] = Workload.all,
                    factors: [Double] = [0.7, 1, 1.4, 2, 2.8], others: Bool = true,
                    learned: () -> PollPolicy = { LearnedPollPolicy(scale: 1) }) -> [BenchRow] {
    var rows: [BenchRow] = []
    for w in workloads {
        let sets = (0..<seeds).map { w.tasks(setup.tasks, seed: UInt64($0 + 1)) }
        let bounds = sets.map { zeroDelayMakespan($0, slots: setup.slots) }
        func run(_ make: ([BenchTask]) -> PollPolicy) -> Summary {
            summarize(zip(sets, bounds).map { (simulate($0, callbackMode: w.callbackMode, policy: make($0), setup: setup), $1) },
                      setup: setup)
        }
        let mine = run { _ in learned() }
        let old = others ? run { _ in PollPlanner(scale: 1) } : nil
        let grids = oracleGrids(w)
        var best: Summary?
        var bestFactor = 1.0
        for f in others ? factors : [] {
            let s = run { OraclePollPolicy(specs: $0, grids: grids, priceFactor: f) }
            if s.peakWindow <= setup.requestsPerMinute, best == nil || s.ratio < best!.ratio {
                best = s
                bestFactor = f
            }
        }
        var b = 0.0
        for (set, bound) in zip(sets, bounds) {
            b += bound / (set.reduce(0) { $0 + $1.duration } / Double(setup.slots)) / Double(seeds)
        }
        rows.append(BenchRow(workload: w.name, webhook: w.callbackMode, bound: b, learned: mine, old: old, oracle: best,
                             oracleFactor: bestFactor))
    }
    return rows
}

func fmt(_ x: Double, _ digits: Int = 3) -> String {
    guard x.isFinite, abs(x) < 1e12 else { return "-" }
    var s = String(Int((x * pow(10, Double(digits))).rounded()))
    while s.count <= digits { s = "0" + s }
    s.insert(".", at: s.index(s.endIndex, offsetBy: -digits))
    return s
}

/// The Markdown table of `rows`.
func benchTable(_ rows: [BenchRow], seeds: Int, setup: BenchSetup) -> String {
    var out = "\(setup.tasks) tasks, \(setup.requestsPerMinute) rpm, \(setup.slots) slots, mean of \(seeds) seeds; "
        + "ratio = makespan / (sum of durations / \(setup.slots))\n\n"
    out += "| workload | zero-delay | learned | learned / zero-delay | old (EWMA) | oracle | learned / oracle | req/task learned | req/task old | peak req/60 s | 429s | seen after (s), learned | submit lag (s) |\n"
    out += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    for r in rows {
        let peak = max(r.learned.peakWindow, r.old?.peakWindow ?? 0)
        func opt(_ x: Double?, _ digits: Int = 3) -> String { x.map { fmt($0, digits) } ?? "-" }
        let oracle = r.oracle.map { "\(fmt($0.ratio)) (x\(fmt(r.oracleFactor, 1)))" } ?? "-"
        out += "| \(r.workload) | \(fmt(r.bound)) | \(fmt(r.learned.ratio)) | \(fmt(r.learned.vsBound)) | \(opt(r.old?.ratio)) | "
            + "\(oracle) | \(opt(r.oracle.map { r.learned.ratio / $0.ratio })) | "
            + "\(fmt(r.learned.requestsPerTask, 2)) | \(opt(r.old?.requestsPerTask, 2)) | "
            + "\(r.learned.peakWindow) (old \(r.old.map { String($0.peakWindow) } ?? "-")) | "
            + "\(r.learned.rejected + (r.old?.rejected ?? 0))\(peak > setup.requestsPerMinute ? " OVER BUDGET" : "") | "
            + "\(fmt(r.learned.detectionDelay, 2)) | \(fmt(r.learned.submitLag, 2)) |\n"
    }
    return out
}
