/// What a poll decision may look at: the load of the whole client.
struct PollLoad {
    /// Tasks being polled or waited for (all of them: submitted, watched, resumed).
    var trackedTasks: Int
    /// Submits waiting for a slot or a token.
    var queuedSubmits: Int
    /// 0 = unlimited.
    var requestsPerWindow: Int
    var window: Double
    /// Tracked tasks (of any origin) that a poll has found unfinished past their first look:
    /// the ones that share the request budget between them. (Added to the fixed seams.)
    var overdueTasks: Int = 0
}

/// One task's poll decision.
struct PollContext {
    /// "model|resolution"
    var key: String
    /// Seconds since submit (or since first seen, plus a plausible server age), local clock.
    var elapsed: Double
    /// Polls so far that found the task unfinished.
    var polls: Int
    /// A webhook is expected: polls are a late fallback.
    var callbackMode: Bool
    var load: PollLoad
}

/// Decides when to poll. Pure: no I/O, no clock of its own, deterministic given its inputs
/// (randomness, if any, passed in). Called on the engine thread only (or a simulation loop).
protocol PollPolicy: AnyObject {
    /// A completed task's duration in seconds (server completeTime - createTime, already
    /// sanity-checked by the caller, time-scale as observed).
    func observe(key: String, duration: Double)
    /// Seconds from now until this task should be polled next.
    func nextPollDelay(_ ctx: PollContext) -> Double
    /// How long a task nobody polls is assumed to keep its slot, given its elapsed time.
    func assumedRemaining(key: String, elapsed: Double) -> Double
    /// The expected seconds from start to completion, as learned so far (the documented
    /// range before any observation): what `Client.expectedSeconds` tells the host.
    /// (Added to the fixed seams.)
    func expectedDuration(key: String) -> Double
}

/// The key of a model and resolution in a policy's tables.
func pollKey(model: String, resolution: String) -> String { model + "|" + resolution }

/// The first poll policy: the first poll near the task's expected completion, learned as a
/// running average (EWMA) of the observed latency per model and resolution; later ones spaced
/// so that the polls of every overdue task fit the request budget, and further apart the
/// longer a task has overrun (a task an hour late needs no poll every second). Times are
/// seconds; defaults come from the documented ranges, scaled.
final class PollPlanner: PollPolicy {
    struct Estimate {
        var mean: Double
        var deviation: Double
        var samples: Int
    }

    let scale: Double
    private var estimates: [String: Estimate] = [:]
    /// Weight of a new observation in the running averages.
    let alpha = 0.2

    init(scale: Double) {
        self.scale = scale
    }

    /// The expected latency (submit to completion, seconds) for a model and resolution.
    func estimate(model: String, resolution: String) -> Estimate {
        estimate(key: pollKey(model: model, resolution: resolution))
    }

    /// The documented generation seconds (unscaled) for a key, and whether the model has any.
    static func documented(key: String) -> (range: ClosedRange<Double>, known: Bool) {
        let parts = key.split(separator: "|", maxSplits: 1)
        let rules = parts.first.flatMap { ModelRules.forModel(String($0)) }
        let range = (parts.count == 2 ? rules?.expectedSeconds[String(parts[1])] : nil)
            ?? rules?.expectedSeconds.values.first
            ?? 25...50
        return (range, rules != nil)
    }

    /// The longest any task of this key could plausibly take (seconds, scaled): 20 times the
    /// documented upper bound, at least two hours for a model whose times are not documented.
    func plausibleLatency(key: String) -> Double {
        let d = PollPlanner.documented(key: key)
        let bound = 20 * d.range.upperBound
        return (d.known ? bound : max(bound, 7200)) * scale
    }

    func plausibleLatency(model: String, resolution: String) -> Double {
        plausibleLatency(key: pollKey(model: model, resolution: resolution))
    }

    func estimate(key: String) -> Estimate {
        if let e = estimates[key] { return e }
        let range = PollPlanner.documented(key: key).range
        // A short queue wait comes on top of the generation time.
        let mean = (range.lowerBound + range.upperBound) / 2 + 1
        return Estimate(mean: mean * scale, deviation: (range.upperBound - range.lowerBound) / 4 * scale, samples: 0)
    }

    /// Learns from one completed task's observed latency (seconds, real time). An implausible
    /// one (not positive, or past `plausibleLatency`: a hostile or broken server clock, or
    /// microseconds sent as milliseconds) is ignored, so no answer can stall later polls.
    func observe(key: String, duration latency: Double) {
        guard latency.isFinite, latency > 0, latency <= plausibleLatency(key: key) else { return }
        var e = estimate(key: key)
        if e.samples == 0 {
            // The first observation replaces the documented guess outright, keeping its spread.
            e.deviation = max(e.deviation * 0.5, abs(latency - e.mean) * 0.5)
            e.mean = latency
        } else {
            let err = latency - e.mean
            e.mean += alpha * err
            e.deviation += alpha * (abs(err) - e.deviation)
        }
        e.samples += 1
        estimates[key] = e
    }

    func observe(model: String, resolution: String, latency: Double) {
        observe(key: pollKey(model: model, resolution: resolution), duration: latency)
    }

    /// When the first look at a task is due, seconds after its start. Webhook tasks poll
    /// only as a late fallback.
    func firstPollTarget(key: String, callbackMode: Bool) -> Double {
        let e = estimate(key: key)
        return callbackMode ? 2 * e.mean + 4 * e.deviation + 30 * scale : e.mean + 0.5 * e.deviation
    }

    /// Seconds from now to the first poll of a task that has been running `elapsed` seconds.
    func firstPollDelay(model: String, resolution: String, elapsed: Double, callbackMode: Bool) -> Double {
        max(minimumGap, firstPollTarget(key: pollKey(model: model, resolution: resolution), callbackMode: callbackMode) - elapsed)
    }

    /// The smallest spacing between two polls of one task.
    var minimumGap: Double { 1 * scale }

    /// Before the expected completion: wait for it. After it: the task's share of 80% of the
    /// request budget among the overdue tasks (at least the minimum gap, 10 s for webhook
    /// tasks), and a fifth of the time the task has overrun its first poll (at most 5 minutes).
    func nextPollDelay(_ ctx: PollContext) -> Double {
        let target = firstPollTarget(key: ctx.key, callbackMode: ctx.callbackMode)
        if ctx.polls == 0 || ctx.elapsed + minimumGap < target {
            return max(minimumGap, target - ctx.elapsed)
        }
        var gap = ctx.callbackMode ? 10 * scale : minimumGap
        if ctx.load.requestsPerWindow > 0 {
            // Leave a fifth of the budget for submits and other calls.
            let share = Double(ctx.load.requestsPerWindow) * 0.8
            gap = max(gap, ctx.load.window * Double(max(1, ctx.load.overdueTasks)) / share)
        }
        let late = ctx.elapsed - target
        if late > 0 { gap = max(gap, min(0.2 * late, 300 * scale)) }
        return gap
    }

    /// How long a task that nobody is polling is assumed to occupy a concurrency slot.
    func assumedRemaining(key: String, elapsed: Double) -> Double {
        let e = estimate(key: key)
        return max(0, e.mean + 3 * e.deviation - elapsed)
    }

    func expectedDuration(key: String) -> Double { estimate(key: key).mean }
}

/// Exponential backoff with jitter: 1 s doubling to 30 s, scaled, times 0.5 to 1.
struct Backoff {
    let scale: Double

    /// The wait before retry `attempt` (0-based); `random` in 0..<1.
    func delay(attempt: Int, random: Double) -> Double {
        let base = 1.0 * scale * Double(1 << min(max(0, attempt), 5))
        let capped = min(base, 30 * scale)
        return capped * (0.5 + 0.5 * random)
    }

    /// The wait before retry `attempt` after an answer that carried `retryAfter` (seconds,
    /// the server's, never scaled): the backoff, or the server's wait when longer.
    func retryDelay(retryAfter: Double?, attempt: Int, random: Double) -> Double {
        max(delay(attempt: attempt, random: random), retryAfter ?? 0)
    }
}
