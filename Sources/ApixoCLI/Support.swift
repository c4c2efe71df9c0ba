import Apixo
import Glibc

// MARK: exit codes

/// The process exit codes of `apixo`, documented in `apixo --help` and Sources/ApixoCLI/README.md.
enum ExitStatus {
    static let ok: Int32 = 0
    static let unexpected: Int32 = 1
    static let badInput: Int32 = 2
    static let auth: Int32 = 3
    static let rateLimited: Int32 = 4
    static let taskFailed: Int32 = 5
    static let network: Int32 = 6
    static let indeterminate: Int32 = 7
    static let localIO: Int32 = 8
    static let interrupted: Int32 = 130
    static let terminated: Int32 = 143

    /// The exit code for a library result code.
    static func forCode(_ code: ApixoCode) -> Int32 {
        switch code {
        case .ok: return ok
        case .invalidArgument, .badRequest, .notFound: return badInput
        case .unauthorized, .paymentRequired, .forbidden: return auth
        case .rateLimited: return rateLimited
        case .taskFailed: return taskFailed
        case .server, .network, .timeout, .protocol: return network
        case .indeterminate: return indeterminate
        case .io: return localIO
        case .cancelled, .closed, .noMemory: return unexpected
        }
    }

    /// The table shown by `apixo --help`.
    static let table = """
        EXIT CODES
          0    success
          1    unexpected error
          2    bad input: usage, invalid option or request (400),
               unknown task or model (404)
          3    authentication, permission or payment (401, 402, 403),
               or no API key
          4    rate limited (429) after the retry budget
          5    a task failed (state "failed"; see its fail code)
          6    network, server (5xx), timeout or malformed answer
          7    indeterminate: a submit was sent but its answer was lost;
               the task may exist and was not resubmitted
          8    local file error (output directory, results, journal)
          130  interrupted (SIGINT); 143 terminated (SIGTERM)
        """
}

/// A failure that ends the command with an exit code and a one-line message.
struct CLIFailure: Error {
    let status: Int32
    let message: String
    /// The library code behind it, for --json output.
    var code: ApixoCode?

    init(_ status: Int32, _ message: String, code: ApixoCode? = nil) {
        self.status = status
        self.message = message
        self.code = code
    }

    init(_ e: ApixoError) {
        self.init(ExitStatus.forCode(e.code), e.message, code: e.code)
    }
}

// MARK: output

/// Writes all of `s` to a file descriptor, unbuffered.
func writeFD(_ fd: Int32, _ s: String) {
    let bytes = Array(s.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return
        }
        off += n
    }
}

/// Where a command's output goes: results to stdout, progress and diagnostics to stderr.
/// On a terminal stderr carries one live line that is redrawn in place. With --json stderr
/// carries JSON lines only, terminal or not: `{"note": ...}`, `{"error": ...}`,
/// `{"progress": {...}}`, `{"log": {...}}`.
final class Console {
    let json: Bool
    let quiet: Bool
    let stderrIsTTY: Bool
    private let lock = Mutex()
    private var liveShown = false

    init(json: Bool, quiet: Bool) {
        self.json = json
        self.quiet = quiet
        stderrIsTTY = !json && isatty(2) == 1 && (getenv("TERM").map { String(cString: $0) } ?? "") != "dumb"
    }

    /// A result line on stdout.
    func result(_ s: String) {
        lock.with {
            clearLiveLocked()
            writeFD(1, s + "\n")
        }
    }

    /// A JSON value on stdout (one line).
    func resultJSON(_ v: JSON) {
        result(v.serialized())
    }

    /// A diagnostic line on stderr (shown even with --quiet when `always`).
    func note(_ s: String, always: Bool = false) {
        if json {
            event(JSONObject([("note", .string(s))]), always: always)
        } else {
            line(s, always: always)
        }
    }

    func error(_ s: String) {
        if json {
            event(JSONObject([("error", .string(s))]), always: true)
        } else {
            line("apixo: error: " + s, always: true)
        }
    }

    /// One JSON object on stderr, as a line (--json).
    func event(_ o: JSONObject, always: Bool = false) {
        line(JSON.object(o).serialized(), always: always)
    }

    private func line(_ s: String, always: Bool) {
        if quiet && !always { return }
        lock.with {
            clearLiveLocked()
            writeFD(2, s + "\n")
        }
    }

    /// Redraws the live progress line (terminal only; nothing otherwise).
    func live(_ s: String) {
        guard stderrIsTTY, !quiet else { return }
        let width = Console.terminalWidth()
        var line = s
        if line.count > width - 1 { line = String(line.prefix(max(0, width - 2))) + "…" }
        lock.with {
            writeFD(2, "\r\u{1b}[K" + line)
            liveShown = true
        }
    }

    func clearLive() {
        lock.with { clearLiveLocked() }
    }

    private func clearLiveLocked() {
        if liveShown {
            writeFD(2, "\r\u{1b}[K")
            liveShown = false
        }
    }

    static func terminalWidth() -> Int {
        var ws = winsize()
        if ioctl(2, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 10 { return Int(ws.ws_col) }
        return 80
    }
}

// MARK: formatting

/// "0.4s", "12.3s", "3m05s".
func formatSeconds(_ s: Double) -> String {
    let s = s.isFinite ? min(max(0, s), 1e12) : 0  // never a trapping Int() below
    if s < 60 { return oneDecimal(s) + "s" }
    let m = Int(s) / 60
    return "\(m)m" + twoDigits(Int(s) % 60) + "s"
}

func twoDigits(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }

/// One decimal: "18.2".
func oneDecimal(_ x: Double) -> String {
    let t = Int((x * 10).rounded())
    return "\(t / 10).\(abs(t % 10))"
}

/// FNV-1a 64-bit, hex: a stable short hash of a batch line.
func fnv1a64(_ s: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01b3
    }
    var hex = String(h, radix: 16)
    while hex.utf8.count < 16 { hex = "0" + hex }
    return hex
}

// MARK: threads and locks

// Mutex, Condition and startThread come from the Apixo module.

func sleepSeconds(_ s: Double) {
    var ts = timespec(tv_sec: Int(s), tv_nsec: Int((s - s.rounded(.down)) * 1e9))
    nanosleep(&ts, nil)
}

// MARK: signals

/// SIGINT / SIGTERM: the first one asks the command to stop cleanly (it polls `Signals.received`);
/// a second one ends the process at once.
enum Signals {
    private static var installed = false

    static func install() {
        guard !installed else { return }
        installed = true
        signalReceived = 0
        var sa = sigaction()
        sa.__sigaction_handler.sa_handler = { sig in
            if signalReceived != 0 { _exit(sig == SIGTERM ? 143 : 130) }
            signalReceived = sig
        }
        sigemptyset(&sa.sa_mask)
        sa.sa_flags = SA_RESTART
        sigaction(SIGINT, &sa, nil)
        sigaction(SIGTERM, &sa, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// Runs `body` (which starts threads) with SIGINT and SIGTERM blocked, so that the threads
    /// it starts inherit the block and only the main thread takes the signals.
    static func blocked<T>(_ body: () throws -> T) rethrows -> T {
        var set = sigset_t(), old = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        return try body()
    }

    /// The first signal received, or 0.
    static var received: Int32 { signalReceived }

    /// The exit code for the received signal.
    static var exitStatus: Int32 { signalReceived == SIGTERM ? ExitStatus.terminated : ExitStatus.interrupted }
}

/// Written only by the signal handler (one aligned word).
nonisolated(unsafe) private var signalReceived: Int32 = 0

// MARK: suggestions

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo
/// (at most a third of the word's length, and at most 3 edits).
func closestName(to word: String, in candidates: [String]) -> String? {
    let w = Array(word.lowercased().utf8)
    var best: (String, Int)?
    for c in candidates {
        let d = editDistance(w, Array(c.lowercased().utf8))
        if d < (best?.1 ?? Int.max) { best = (c, d) }
    }
    guard let (name, d) = best, d > 0, d <= min(3, max(1, w.count / 3)) else { return nil }
    return name
}

/// Levenshtein distance, with a transposition of neighbours counted as one edit.
func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev2 = [Int](repeating: 0, count: b.count + 1)
    var prev = Array(0...b.count)
    var cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { cur[j] = min(cur[j], prev2[j - 2] + 1) }
        }
        (prev2, prev, cur) = (prev, cur, prev2)
    }
    return prev[b.count]
}
