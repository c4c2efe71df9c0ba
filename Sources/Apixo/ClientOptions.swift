import Glibc

public let apixoVersion = "0.1.0"

/// Settings of a client. Unset API key and base URL fall back to the APIXO_API_KEY and
/// APIXO_BASE_URL environment variables.
public struct ClientOptions: Sendable {
    public static let defaultBaseURL = "https://api.apixo.ai/api/v1"

    public var apiKey: String?
    public var baseURL: String?
    /// Per HTTP request, milliseconds.
    public var timeoutMs = 30_000
    /// Retries of a GET, or of a POST the server certainly did not take.
    public var maxRetries = 3
    /// 0 = no limit.
    public var requestsPerMinute = 60
    /// 0 = no limit.
    public var maxConcurrentTasks = 10
    /// Multiplies every built-in time assumption (rate window, expected generation time,
    /// poll spacing, backoff).
    public var timeScale = 1.0
    public var caFile: String?
    public var logger: LogSink?
    public var logLevel = LogLevel.info
    public var journalPath: String?
    public var maxDownloadBytes: Int64 = 64 << 20
    /// Where callbacks and log lines run: on the client's dispatcher thread (default) or on
    /// the host's own thread, from a queue (`Client.eventFD`, `dispatch`, `nextEvent`).
    public var delivery = DeliveryMode.thread
    /// A Redis URL for a budget shared with every client on the same URL and namespace
    /// (other processes, other machines); nil: env APIXO_SHARED_BUDGET, else a local budget.
    public private(set) var sharedBudgetURL: String?
    /// The shared budget's key prefix; nil: derived from a hash of the API key.
    public private(set) var sharedBudgetNamespace: String?
    /// Which policy plans the polls. Unset: the APIXO_POLL_POLICY environment variable
    /// (`learned` or `ewma`), else `.learned`.
    public var pollPolicy: PollPolicyKind?
    /// The longest server Retry-After honoured, milliseconds; a longer one fails the call.
    public var maxRetryAfterMs = 300_000
    /// The longest one download attempt may take (connect to last byte), milliseconds.
    public var downloadTimeoutMs = 600_000

    public init() {}

    /// The poll policies: `learned` (LearnedPollPolicy, the default: the latency distribution
    /// learned per model and resolution, polls planned by a DP priced to the request budget)
    /// and `ewma` (PollPlanner, the first policy: a running mean and deviation; kept for
    /// comparison, `make bench-policy`).
    public enum PollPolicyKind: String, CaseIterable, Sendable {
        case learned, ewma
    }

    /// The policy these options choose: `pollPolicy`, else APIXO_POLL_POLICY, else learned
    /// (an unknown name too).
    var resolvedPollPolicy: PollPolicyKind {
        pollPolicy ?? ClientOptions.environment("APIXO_POLL_POLICY").flatMap { PollPolicyKind(rawValue: $0) } ?? .learned
    }

    public mutating func setTimeoutMs(_ ms: Int) throws {
        guard ms > 0 else { throw ApixoError(.invalidArgument, "timeout_ms must be greater than 0") }
        timeoutMs = ms
    }

    public mutating func setMaxRetries(_ n: Int) throws {
        guard n >= 0 else { throw ApixoError(.invalidArgument, "max_retries must be 0 or more") }
        maxRetries = n
    }

    public mutating func setLimits(requestsPerMinute rpm: Int, maxConcurrentTasks tasks: Int) throws {
        guard rpm >= 0, tasks >= 0 else {
            throw ApixoError(.invalidArgument, "limits must be 0 (off) or positive")
        }
        requestsPerMinute = rpm
        maxConcurrentTasks = tasks
    }

    public mutating func setTimeScale(_ s: Double) throws {
        guard s.isFinite, s > 0 else {
            throw ApixoError(.invalidArgument, "time_scale must be a finite number greater than 0")
        }
        timeScale = s
    }

    public mutating func setMaxDownloadBytes(_ n: Int64) throws {
        guard n > 0 else { throw ApixoError(.invalidArgument, "max_download_bytes must be greater than 0") }
        maxDownloadBytes = n
    }

    /// Shares the account's budget through Redis (`redis://[:password@]host[:port][/db]` or
    /// `unix:///path`); nil turns it off. The namespace (1 to 128 printable characters, no
    /// spaces) defaults to one derived from a hash of the API key.
    public mutating func setSharedBudget(url: String?, namespace: String? = nil) throws {
        if let url { _ = try RedisURL.parse(url) }
        if let ns = namespace {
            guard !ns.isEmpty, ns.utf8.count <= 128, !ns.utf8.contains(where: { $0 <= 32 || $0 == 127 }) else {
                throw ApixoError(.invalidArgument, "shared budget namespace must be 1 to 128 printable characters without spaces")
            }
        }
        sharedBudgetURL = url
        sharedBudgetNamespace = url == nil ? nil : namespace
    }

    public mutating func setMaxRetryAfterMs(_ ms: Int) throws {
        guard ms >= 0 else { throw ApixoError(.invalidArgument, "max_retry_after_ms must be 0 or more") }
        maxRetryAfterMs = ms
    }

    public mutating func setDownloadTimeoutMs(_ ms: Int) throws {
        guard ms > 0 else { throw ApixoError(.invalidArgument, "download_timeout_ms must be greater than 0") }
        downloadTimeoutMs = ms
    }

    public mutating func setBaseURL(_ url: String) throws {
        guard Request.isHTTPURL(url) else {
            throw ApixoError(.invalidArgument, "base_url must be an http or https URL")
        }
        baseURL = url
    }

    public mutating func setAPIKey(_ key: String) throws {
        guard !key.isEmpty, !key.utf8.contains(where: { $0 < 32 || $0 == 127 }) else {
            throw ApixoError(.invalidArgument, "api_key must be non-empty printable text")
        }
        apiKey = key
    }

    static func environment(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }
}
