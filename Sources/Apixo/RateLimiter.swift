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

    /// The earliest time at or after `now` when one more request may be sent.
    func nextAvailable(_ now: Double) -> Double {
        var t = max(now, pausedUntil)
        guard capacity > 0 else { return t }
        expire(now)
        let used = sent.count - head
        if used >= capacity {
            // The request that must leave the window before another may go.
            t = max(t, sent[head + (used - capacity)] + window)
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

/// Plans when to poll: the first poll near the task's expected completion, learned from the
/// observed latency per model and resolution; later ones spaced so that all polls fit the
/// request budget. Times are seconds; defaults come from the documented ranges, scaled.
final class PollPlanner {
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

    static func key(model: String, resolution: String) -> String { model + "|" + resolution }

    /// The expected latency (submit to completion, seconds) for a model and resolution.
    func estimate(model: String, resolution: String) -> Estimate {
        if let e = estimates[PollPlanner.key(model: model, resolution: resolution)] { return e }
        let range = ModelRules.forModel(model)?.expectedSeconds[resolution]
            ?? ModelRules.forModel(model)?.expectedSeconds.values.first
            ?? 25...50
        // A short queue wait comes on top of the generation time.
        let mean = (range.lowerBound + range.upperBound) / 2 + 1
        return Estimate(mean: mean * scale, deviation: (range.upperBound - range.lowerBound) / 4 * scale, samples: 0)
    }

    /// Learns from one completed task's observed latency (seconds, real time).
    func observe(model: String, resolution: String, latency: Double) {
        guard latency.isFinite, latency > 0 else { return }
        let k = PollPlanner.key(model: model, resolution: resolution)
        var e = estimate(model: model, resolution: resolution)
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
        estimates[k] = e
    }

    /// Seconds from now to the first poll of a task that has been running `elapsed` seconds.
    /// Webhook tasks poll only as a late fallback.
    func firstPollDelay(model: String, resolution: String, elapsed: Double, callbackMode: Bool) -> Double {
        let e = estimate(model: model, resolution: resolution)
        let target = callbackMode ? 2 * e.mean + 4 * e.deviation + 30 * scale : e.mean + 0.5 * e.deviation
        return max(minimumGap, target - elapsed)
    }

    /// The smallest spacing between two polls of one task.
    var minimumGap: Double { 1 * scale }

    /// Seconds to the next poll of a task whose earlier poll found it unfinished, given how
    /// many tasks are in that overdue phase and the request budget (0 = unlimited).
    func nextPollDelay(overdueTasks: Int, requestsPerWindow: Int, window: Double, callbackMode: Bool) -> Double {
        var gap = callbackMode ? 10 * scale : minimumGap
        if requestsPerWindow > 0 {
            // Leave a fifth of the budget for submits and other calls.
            let share = Double(requestsPerWindow) * 0.8
            gap = max(gap, window * Double(max(1, overdueTasks)) / share)
        }
        return gap
    }

    /// How long a task that nobody is polling is assumed to occupy a concurrency slot.
    func assumedRemaining(model: String, resolution: String, elapsed: Double) -> Double {
        let e = estimate(model: model, resolution: resolution)
        return max(0, e.mean + 3 * e.deviation - elapsed)
    }

    /// Exponential backoff with jitter for retry `attempt` (0-based).
    func backoff(attempt: Int, random: Double) -> Double {
        let base = 1.0 * scale * Double(1 << min(attempt, 5))
        let capped = min(base, 30 * scale)
        return capped * (0.5 + 0.5 * random)
    }
}
