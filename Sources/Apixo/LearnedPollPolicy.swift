import Glibc

/// A poll policy that learns each key's latency distribution online and plans every task's
/// polls with a small dynamic program.
///
/// - Per key (model|resolution) it keeps the last `window` observed durations as a
///   kernel-smoothed empirical distribution, with the documented range (plus the queue wait)
///   as a prior that fades out over the first observations, and a thin exponential tail past
///   everything seen so far, so that a task later than all of them is still looked for.
/// - When the newest `driftRun` observations all fall outside what came before (all above its
///   maximum or all below its minimum), the service has changed: the window restarts from them.
/// - A poll has a price in seconds of detection delay. For a task that has run `elapsed`
///   seconds and is not done, the next poll minimises price x expected polls + expected delay
///   from completion to the poll that sees it, under the distribution conditional on
///   "not done by `elapsed`" (a DP on a grid, solved once per price and distribution).
/// - The price is the lowest one at which the expected request rate of all tracked tasks
///   (their polls, plus one submit per task while submits wait) stays within `targetShare` of
///   the budget: it rises with the number of tasks competing for the budget and falls once
///   nothing is left to submit.
///
/// Pure: no I/O, no clock, no randomness. Times are seconds on the caller's (scaled) clock.
final class LearnedPollPolicy: PollPolicy {
    struct Parameters {
        /// Observations kept per key.
        var window = 30
        /// The newest observations that must all fall outside the rest to restart the window.
        var driftRun = 4
        /// The documented range counts as this many observations until that many are seen.
        var priorWeight = 3.0
        /// Multiplies Silverman's rule-of-thumb kernel bandwidth.
        var bandwidth = 1.0
        /// The smallest kernel bandwidth, seconds (unscaled).
        var minBandwidth = 0.3
        /// Weight of the exponential tail past the largest observation: `tailWeight`, plus
        /// `earlyTailWeight * earlyTailCount / (n + earlyTailCount)` with n observations in the
        /// window (few observations, often the quickest ones, say little about the slowest);
        /// its mean as a share of the median.
        var tailWeight = 0.02
        var earlyTailWeight = 0.4
        var earlyTailCount = 5.0
        var tailMean = 0.4
        /// The share of the request budget the expected request rate aims at.
        var targetShare = 0.95
        /// The lowest price of a poll, seconds (unscaled) of detection delay, while nothing
        /// waits to be submitted: however much of the budget is free, a lone task is not
        /// polled every second (the budget is the account's, and other clients may share it).
        /// While submits wait the budget sets the price alone: every request it leaves
        /// unspent is lost to the queue.
        var minimumPrice = 0.5
        /// Multiplies the price while nothing waits to be submitted.
        var idlePriceFactor = 1.0
        /// Grid step of the DP, seconds (unscaled).
        var step = 0.5
        /// The smallest and largest spacing of two polls of one task, seconds (unscaled); the
        /// first poll may wait longer, up to this much past the first possible completion.
        var minimumGap = 1.0
        var maximumGap = 30.0
        /// A task later than everything the distribution has seen (past its last observation
        /// and the prior) is polled at least `lateShare` of its lateness apart, at most
        /// `maximumLateGap` seconds (unscaled): the longer it has overrun, the less a second
        /// matters (a task an hour late needs no poll every few seconds).
        var lateShare = 0.2
        var maximumLateGap = 300.0
        /// Observations longer than this multiple of the documented upper bound are ignored.
        var absurdFactor = 20.0
        /// Webhook tasks: the fallback poll after this multiple of the learned 99.9% quantile
        /// (at least 30 s later), then every `webhookGap` seconds at the least.
        var webhookQuantileFactor = 2.0
        var webhookGap = 10.0

        init() {}
    }

    let scale: Double
    let parameters: Parameters
    /// The documented duration range of a key (generation plus queue wait, unscaled seconds).
    private let prior: (String) -> ClosedRange<Double>
    private var models: [String: LatencyModel] = [:]

    /// The price ladder: `minPrice * priceRatio^k`, seconds (unscaled) of delay per poll.
    static let minPrice = 0.02
    static let priceRatio = 1.15
    static let priceLevels = 80

    init(scale: Double, parameters: Parameters = Parameters(),
         prior: @escaping (String) -> ClosedRange<Double> = LearnedPollPolicy.documentedRange) {
        self.scale = scale > 0 && scale.isFinite ? scale : 1
        self.parameters = parameters
        self.prior = prior
    }

    /// The documented generation range of a key plus the documented-by-experience queue wait
    /// (0.5 to 2 s); 25 to 50 s for a model without rules.
    static func documentedRange(_ key: String) -> ClosedRange<Double> {
        let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
        let rules = parts.first.flatMap { ModelRules.forModel($0) }
        let r = (parts.count == 2 ? rules?.expectedSeconds[parts[1]] : nil)
            ?? rules?.expectedSeconds.values.max(by: { $0.upperBound < $1.upperBound })
            ?? 25...50
        return (r.lowerBound + 0.5)...(r.upperBound + 2)
    }

    func model(_ key: String) -> LatencyModel {
        if let m = models[key] { return m }
        let r = prior(key)
        let m = LatencyModel(prior: (r.lowerBound * scale)...(r.upperBound * scale), scale: scale, parameters: parameters)
        models[key] = m
        return m
    }

    // MARK: PollPolicy

    func observe(key: String, duration: Double) {
        let m = model(key)
        guard duration.isFinite, duration > 0, duration <= parameters.absurdFactor * m.prior.upperBound else { return }
        m.add(duration)
    }

    func nextPollDelay(_ ctx: PollContext) -> Double {
        let m = model(ctx.key)
        let minGap = parameters.minimumGap * scale
        if ctx.callbackMode { return webhookDelay(m, ctx) }
        let price = self.price(m, load: ctx.load)
        let at = m.table(priceLevel: price).nextPoll(after: ctx.elapsed)
        return max(minGap, at - ctx.elapsed, lateGap(m, elapsed: ctx.elapsed))
    }

    /// The least gap for a task that has run `elapsed` seconds: a share of how late it is.
    func lateGap(_ m: LatencyModel, elapsed: Double) -> Double {
        let late = elapsed - m.distribution.lateAfter
        guard late > 0, late.isFinite else { return 0 }
        return min(parameters.lateShare * late, parameters.maximumLateGap * scale)
    }

    func assumedRemaining(key: String, elapsed: Double) -> Double {
        let m = model(key)
        return max(0, m.distribution.conditionalQuantile(0.995, after: max(0, elapsed)) - max(0, elapsed))
    }

    func expectedDuration(key: String) -> Double { model(key).distribution.typical }

    // MARK: price

    /// The price level (index into the ladder) for a poll of a task of `m` under `load`.
    func price(_ m: LatencyModel, load: PollLoad) -> Int {
        LearnedPollPolicy.price(load: load, targetShare: parameters.targetShare, idlePriceFactor: parameters.idlePriceFactor,
                                floor: load.queuedSubmits > 0 ? 0
                                    : LearnedPollPolicy.level(forPrice: parameters.minimumPrice / Double(max(1, load.trackedTasks)))) {
            m.table(priceLevel: $0)
        }
    }

    /// The lowest ladder level whose price is at least `p` seconds (unscaled).
    static func level(forPrice p: Double) -> Int {
        guard p > minPrice else { return 0 }
        return min(priceLevels - 1, Int((log(p / minPrice) / log(priceRatio)).rounded(.up)))
    }

    /// The lowest price level at which `load.trackedTasks` tasks polled as `table(level)`
    /// plans (plus one submit each while submits wait) fit `targetShare` of the budget.
    static func price(load: PollLoad, targetShare: Double, idlePriceFactor: Double, floor: Int = 0,
                      table: (Int) -> PollTable) -> Int {
        guard load.requestsPerWindow > 0, load.window > 0 else { return floor }
        let idle = load.queuedSubmits == 0
        let rate = targetShare * Double(load.requestsPerWindow) / load.window
        let n = Double(max(1, load.trackedTasks))
        func fits(_ k: Int) -> Bool {
            let s = table(k).summary
            return n * (s.polls + (idle ? 0 : 1)) / s.lifetime <= rate
        }
        func idleLevel(_ k: Int) -> Int {
            guard idle, idlePriceFactor != 1, idlePriceFactor > 0 else { return k }
            let shift = Int((log(idlePriceFactor) / log(priceRatio)).rounded())
            return min(priceLevels - 1, max(0, k + shift))
        }
        // The rate falls as the price rises: the lowest level that fits.
        var lo = max(0, min(floor, priceLevels - 1)), hi = priceLevels - 1
        if fits(lo) { return max(lo, idleLevel(lo)) }
        if !fits(hi) { return hi }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if fits(mid) { hi = mid } else { lo = mid }
        }
        return max(floor, idleLevel(hi))
    }

    /// The price of a ladder level, seconds on the caller's clock.
    func priceSeconds(_ level: Int) -> Double {
        LearnedPollPolicy.minPrice * scale * pow(LearnedPollPolicy.priceRatio, Double(level))
    }

    /// The poll times the policy would plan for a task of `key` from `elapsed` on, if every
    /// poll found it unfinished, up to `limit` polls (for tests and tools).
    func plannedPolls(key: String, load: PollLoad, from elapsed: Double = 0, limit: Int = 20) -> [Double] {
        var out: [Double] = []
        var t = elapsed
        var ctx = PollContext(key: key, elapsed: t, polls: 0, callbackMode: false, load: load)
        for i in 0..<limit {
            ctx.elapsed = t
            ctx.polls = i
            t += nextPollDelay(ctx)
            out.append(t)
        }
        return out
    }

    private func webhookDelay(_ m: LatencyModel, _ ctx: PollContext) -> Double {
        let q = m.distribution.quantile(0.999)
        let first = max(parameters.webhookQuantileFactor * q, q + 30 * scale)
        if ctx.elapsed + parameters.minimumGap * scale < first { return first - ctx.elapsed }
        var gap = parameters.webhookGap * scale
        if ctx.load.requestsPerWindow > 0 {
            // A fallback poll takes at most its share of 80% of the budget.
            gap = max(gap, ctx.load.window * Double(max(1, ctx.load.trackedTasks)) / (0.8 * Double(ctx.load.requestsPerWindow)))
        }
        return gap
    }
}

/// One key's observations and what is derived from them (lazily, once per change).
final class LatencyModel {
    let prior: ClosedRange<Double>
    let scale: Double
    let parameters: LearnedPollPolicy.Parameters
    /// The window of observations, oldest first.
    private(set) var samples: [Double] = []
    /// Observations ever taken (the prior fades with them) and window restarts.
    private(set) var seen = 0
    private(set) var resets = 0
    private var cachedDistribution: LatencyDistribution?
    private var tables: [Int: PollTable] = [:]

    init(prior: ClosedRange<Double>, scale: Double, parameters: LearnedPollPolicy.Parameters) {
        self.prior = prior
        self.scale = scale
        self.parameters = parameters
    }

    func add(_ d: Double) {
        samples.append(d)
        seen += 1
        if samples.count > parameters.window { samples.removeFirst(samples.count - parameters.window) }
        let k = parameters.driftRun
        if k > 0, samples.count >= 3 * k {
            let before = samples.dropLast(k)
            let newest = samples.suffix(k)
            if let lo = before.min(), let hi = before.max(),
               newest.allSatisfy({ $0 > hi }) || newest.allSatisfy({ $0 < lo }) {
                samples = Array(newest)
                resets += 1
            }
        }
        cachedDistribution = nil
        tables.removeAll(keepingCapacity: true)
    }

    var distribution: LatencyDistribution {
        if let d = cachedDistribution { return d }
        let d = LatencyDistribution(samples: samples, seen: seen, prior: prior, scale: scale, parameters: parameters)
        cachedDistribution = d
        return d
    }

    func table(priceLevel k: Int) -> PollTable {
        if let t = tables[k] { return t }
        let p = LearnedPollPolicy.minPrice * scale * pow(LearnedPollPolicy.priceRatio, Double(k))
        let t = PollTable(distribution.grid, price: p,
                          minGap: parameters.minimumGap * scale, maxGap: parameters.maximumGap * scale)
        tables[k] = t
        return t
    }
}

/// A duration distribution: a mixture of Gaussian kernels on the observations, a uniform prior
/// over the documented range and an exponential tail, with closed forms for the CDF F and the
/// partial first moment M(t) = E[D; D <= t], and both tabulated on a grid for the DP.
struct LatencyDistribution {
    private var kernels: [Double] = []
    private var kernelWeight = 0.0
    private var bandwidth = 1.0
    private let priorRange: ClosedRange<Double>
    private var priorWeight = 0.0
    private var tailStart = 0.0
    private var tailMean = 1.0
    private var tailWeight = 0.0
    /// F and M tabulated for the DP.
    private(set) var grid = DistributionGrid(step: 1, cdfs: [0, 1], moments: [0, 0], mean: 0)
    var mean: Double { grid.mean }
    /// The mean without the tail: the observations (and the prior while it counts).
    private(set) var typical = 0.0
    /// Past every observation and the prior (where the tail begins).
    var lateAfter: Double { tailStart }

    init(samples: [Double], seen: Int, prior: ClosedRange<Double>, scale: Double, parameters p: LearnedPollPolicy.Parameters) {
        priorRange = prior
        let n = Double(samples.count)
        let pw = max(0, p.priorWeight - Double(seen)) / max(p.priorWeight, 1e-9)
        priorWeight = samples.isEmpty ? 1 : pw
        kernels = samples
        kernelWeight = samples.isEmpty ? 0 : (1 - priorWeight) / n
        // Silverman's rule, with the prior's spread standing in until a few are seen.
        var sd = (prior.upperBound - prior.lowerBound) / 12.0.squareRoot()
        if samples.count >= 3 {
            let m = samples.reduce(0, +) / n
            sd = (samples.reduce(0) { $0 + ($1 - m) * ($1 - m) } / (n - 1)).squareRoot()
        }
        bandwidth = max(p.minBandwidth * scale, p.bandwidth * 1.06 * sd * pow(max(n, 1), -0.2))
        let top = max(samples.max() ?? 0, priorWeight > 0 ? prior.upperBound : 0)
        let sorted = samples.sorted()
        let median = sorted.isEmpty ? (prior.lowerBound + prior.upperBound) / 2 : sorted[sorted.count / 2]
        tailStart = top + bandwidth
        tailMean = max(p.minimumGap * scale, p.tailMean * median)
        typical = samples.isEmpty ? (prior.lowerBound + prior.upperBound) / 2
            : priorWeight * (prior.lowerBound + prior.upperBound) / 2 + kernelWeight * samples.reduce(0, +)
        tailWeight = min(0.5, p.tailWeight + p.earlyTailWeight * p.earlyTailCount / (n + p.earlyTailCount))
        let rest = 1 - tailWeight
        priorWeight *= rest
        kernelWeight *= rest
        // The grid reaches far into the tail (its mass beyond is e^-12 of the tail's).
        let end = tailStart + 12 * tailMean
        var h = p.step * scale
        if end / h > 4000 { h = end / 4000 }
        let count = Int((end / h).rounded(.up)) + 1
        var cdfs: [Double] = [], moments: [Double] = []
        cdfs.reserveCapacity(count)
        moments.reserveCapacity(count)
        for i in 0..<count {
            let t = Double(i) * h
            cdfs.append(cdf(t))
            moments.append(moment(t))
        }
        grid = DistributionGrid(step: h, cdfs: cdfs, moments: moments, mean: moment(.infinity))
    }

    /// P(D <= t).
    func cdf(_ t: Double) -> Double {
        var f = 0.0
        if kernelWeight > 0 {
            for x in kernels { f += LatencyDistribution.phi((t - x) / bandwidth) }
            f *= kernelWeight
        }
        if priorWeight > 0 {
            let (a, b) = (priorRange.lowerBound, priorRange.upperBound)
            f += priorWeight * (b > a ? min(1, max(0, (t - a) / (b - a))) : (t >= a ? 1 : 0))
        }
        if t > tailStart { f += tailWeight * (1 - exp(-(t - tailStart) / tailMean)) }
        return min(1, f)
    }

    /// E[D; D <= t].
    func moment(_ t: Double) -> Double {
        var m = 0.0
        if kernelWeight > 0 {
            for x in kernels {
                if t == .infinity { m += x; continue }
                let z = (t - x) / bandwidth
                m += x * LatencyDistribution.phi(z) - bandwidth * exp(-0.5 * z * z) / (2 * Double.pi).squareRoot()
            }
            m *= kernelWeight
        }
        if priorWeight > 0 {
            let (a, b) = (priorRange.lowerBound, priorRange.upperBound)
            let u = min(max(t, a), b)
            m += priorWeight * (b > a ? (u * u - a * a) / (2 * (b - a)) : (t >= a ? a : 0))
        }
        if t > tailStart {
            let s = tailStart, mu = tailMean
            let e = t == .infinity ? 0 : exp(-(t - s) / mu)
            m += tailWeight * ((s + mu) - (t == .infinity ? 0 : (t + mu) * e))
        }
        return m
    }

    static func phi(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }

    func quantile(_ q: Double) -> Double { grid.conditionalQuantile(q, after: 0) }

    func conditionalQuantile(_ q: Double, after: Double) -> Double { grid.conditionalQuantile(q, after: after) }
}

/// A duration distribution tabulated for the DP: F(t) = P(D <= t) and M(t) = E[D; D <= t] at
/// t = i * step, linear in between; past the end, F = 1.
struct DistributionGrid {
    let step: Double
    let cdfs: [Double]
    let moments: [Double]
    let mean: Double

    private func interpolate(_ a: [Double], _ t: Double) -> Double {
        let x = max(0, t) / step
        let i = Int(x.rounded(.down))
        if i >= a.count - 1 { return a[a.count - 1] }
        let w = x - Double(i)
        return a[i] * (1 - w) + a[i + 1] * w
    }

    func cdf(_ t: Double) -> Double { interpolate(cdfs, t) }
    func moment(_ t: Double) -> Double { interpolate(moments, t) }
    var end: Double { Double(cdfs.count - 1) * step }

    /// The time by which a share `q` of the tasks not done at `after` is done (the end of the
    /// grid at the most).
    func conditionalQuantile(_ q: Double, after: Double) -> Double {
        let f0 = cdf(after)
        let target = f0 + q * (1 - f0)
        guard after < end, cdf(end) > target else { return max(after, end) }
        var lo = after, hi = end
        for _ in 0..<50 {
            let mid = (lo + hi) / 2
            if cdf(mid) < target { lo = mid } else { hi = mid }
        }
        return hi
    }

    /// The distribution of `samples` (an empirical one, for an oracle that knows it).
    static func empirical(_ samples: [Double], step: Double) -> DistributionGrid {
        let xs = samples.filter { $0.isFinite && $0 > 0 }.sorted()
        let n = Double(max(1, xs.count))
        let count = Int(((xs.last ?? step) / step).rounded(.up)) + 2
        var cdfs = [Double](repeating: 0, count: count), moments = cdfs
        var k = 0, f = 0.0, m = 0.0
        for i in 0..<count {
            let t = Double(i) * step
            while k < xs.count, xs[k] <= t {
                f += 1 / n
                m += xs[k] / n
                k += 1
            }
            cdfs[i] = f
            moments[i] = m
        }
        return DistributionGrid(step: step, cdfs: cdfs, moments: moments, mean: m)
    }
}

/// The optimal poll schedule for one distribution and one price, on the distribution's grid.
/// W(i) = S(i) x (expected price and delay from grid time i on, given not done by then):
/// W(i) = min over the next poll j of  price x S(i) + E[(t_j - D); t_i < D <= t_j] + W(j).
struct PollTable {
    let step: Double
    let price: Double
    private let dist: DistributionGrid
    private let minSteps: Int
    /// The largest gap counts from the onset of the distribution (the first grid point with
    /// any mass): the first poll may go straight to where completions begin.
    private let maxSteps: Int
    private let onset: Int
    private var cost: [Double]
    private var polls: [Double]
    private var delay: [Double]
    /// Expected polls per task and expected time from start to detection, from elapsed 0.
    private(set) var summary: (polls: Double, lifetime: Double) = (0, 1)

    init(_ d: DistributionGrid, price: Double, minGap: Double, maxGap: Double) {
        dist = d
        step = d.step
        self.price = price
        minSteps = max(1, Int((minGap / d.step).rounded(.up)))
        maxSteps = max(minSteps, Int((maxGap / d.step).rounded(.down)))
        let n = d.cdfs.count
        cost = [Double](repeating: 0, count: n)
        polls = [Double](repeating: 0, count: n)
        delay = [Double](repeating: 0, count: n)
        let F = d.cdfs, M = d.moments
        onset = F.firstIndex { $0 > 1e-4 } ?? 0
        // Past the grid's end: one more poll sees it (the mass there is negligible).
        for i in stride(from: n - 1, through: 0, by: -1) {
            let s = 1 - F[i]
            var best = Double.infinity, bp = s, bd = 0.0
            let lo = i + minSteps, hi = min(n - 1, max(i, onset) + maxSteps)
            if lo > n - 1 {
                best = price * s
            } else {
                for j in lo...hi {
                    let tj = Double(j) * step
                    let dl = tj * (F[j] - F[i]) - (M[j] - M[i])
                    let c = price * s + dl + cost[j]
                    if c < best { best = c; bp = s + polls[j]; bd = dl + delay[j] }
                }
            }
            cost[i] = best
            polls[i] = bp
            delay[i] = bd
        }
        summary = (polls[0], d.mean + delay[0])
    }

    /// The best time for the next poll of a task not done at `elapsed` (any real time).
    func nextPoll(after elapsed: Double) -> Double {
        let n = cost.count
        let f0 = dist.cdf(elapsed), m0 = dist.moment(elapsed)
        let first = Int((elapsed / step).rounded(.down)) + minSteps
        // Beyond the grid (a negligible mass): half the largest gap.
        guard first < n else { return elapsed + step * Double(max(minSteps, maxSteps / 2)) }
        let s = 1 - f0
        var best = Double.infinity, at = Double(first) * step
        for j in first...min(n - 1, max(first - minSteps, onset) + maxSteps) {
            let tj = Double(j) * step
            let c = price * s + tj * (dist.cdfs[j] - f0) - (dist.moments[j] - m0) + cost[j]
            if c < best { best = c; at = tj }
        }
        return at
    }
}
