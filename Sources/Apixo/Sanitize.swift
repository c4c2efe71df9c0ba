/// The one place where text that may hold outside input is made fit to show: every error
/// message (`ApixoError`, `Outcome`) and log line passes `Sanitizer.message`, and the status
/// JSON and fail fields of a server pass `Sanitizer.redact`. So whatever a server echoes (the
/// Authorization header, newlines), the API key never reaches an error, a log line or task
/// JSON, and every message is one line.
enum Sanitizer {
    /// What stands in for an API key.
    static let redacted = "[redacted]"
    /// Messages are cut to this many bytes (a server message can be megabytes).
    static let maxMessageBytes = 4096

    /// The API keys of the live clients of this process. Each client registers its key while
    /// it lives, so error construction, which knows no client, can still redact it.
    static func register(_ secret: String) { secrets.add(secret) }
    static func unregister(_ secret: String) { secrets.remove(secret) }

    /// One line: control characters (C0, DEL, C1, U+2028, U+2029) escaped, every registered
    /// key replaced by "[redacted]", at most `maxMessageBytes` bytes. Idempotent.
    static func message(_ text: String) -> String {
        var out = text
        if out.unicodeScalars.contains(where: isLineBreaking) {
            out = ""
            for u in text.unicodeScalars {
                guard isLineBreaking(u) else {
                    out.unicodeScalars.append(u)
                    continue
                }
                switch u {
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    var hex = String(u.value, radix: 16)
                    while hex.utf8.count < 4 { hex = "0" + hex }
                    out += "\\u" + hex
                }
            }
        }
        out = redact(out)
        if out.utf8.count > maxMessageBytes {
            var cut = ""
            var n = 0
            for u in out.unicodeScalars {
                let w = String(u).utf8.count
                if n + w > maxMessageBytes - 3 { break }
                cut.unicodeScalars.append(u)
                n += w
            }
            out = cut + "..."
        }
        return out
    }

    /// `text` with every registered key (and its JSON-escaped form) replaced by "[redacted]".
    static func redact(_ text: String) -> String {
        var out = text
        for key in secrets.all() {
            out = replacing(key, in: out)
            let escaped = jsonEscaped(key)
            if escaped != key { out = replacing(escaped, in: out) }
        }
        return out
    }

    private static func isLineBreaking(_ u: Unicode.Scalar) -> Bool {
        u.value < 0x20 || (0x7F...0x9F).contains(u.value) || u.value == 0x2028 || u.value == 0x2029
    }

    /// The key as jansson writes it inside a JSON string (keys are printable: only " and \).
    private static func jsonEscaped(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            if c == "\"" || c == "\\" { out += "\\" }
            out.unicodeScalars.append(c)
        }
        return out
    }

    /// Every occurrence of `needle` in `hay` replaced (byte-wise, left to right).
    private static func replacing(_ needle: String, in hay: String) -> String {
        let n = Array(needle.utf8), h = Array(hay.utf8)
        guard !n.isEmpty, h.count >= n.count else { return hay }
        var out: [UInt8] = []
        var i = 0
        var found = false
        while i < h.count {
            if h[i] == n[0], i + n.count <= h.count, h[i..<(i + n.count)].elementsEqual(n) {
                out += redacted.utf8
                i += n.count
                found = true
            } else {
                out.append(h[i])
                i += 1
            }
        }
        return found ? String(decoding: out, as: UTF8.self) : hay
    }

    private static let secrets = SecretSet()
}

/// A counted set of strings under a lock (two clients may share a key).
private final class SecretSet: @unchecked Sendable {  // every access under its mutex
    private let mutex = Mutex()
    private var counts: [String: Int] = [:]

    func add(_ s: String) {
        guard !s.isEmpty else { return }
        mutex.with { counts[s, default: 0] += 1 }
    }

    func remove(_ s: String) {
        mutex.with {
            if let n = counts[s] { counts[s] = n > 1 ? n - 1 : nil }
        }
    }

    func all() -> [String] { mutex.with { Array(counts.keys) } }
}
