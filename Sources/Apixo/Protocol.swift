import CCurl

/// Range checks for numbers that come from outside (answers, webhooks, journal files): every
/// conversion of such a number to an integer goes through here, so none can trap.
enum Bounded {
    /// The last millisecond of year 9999: no time of a task lies beyond it.
    static let maxUnixMillis: Int64 = 253_402_300_799_999

    /// A time (Unix ms) or duration (ms) field; nil when negative or past year 9999.
    static func millis(_ i: Int64) -> Int64? { (0...maxUnixMillis).contains(i) ? i : nil }

    /// The same for a JSON real; nil also for NaN and infinities.
    static func millis(_ d: Double) -> Int64? {
        d >= 0 && d <= Double(maxUnixMillis) ? Int64(d) : nil
    }

    /// Whole milliseconds (rounded up) of a duration in seconds, for timers and log lines:
    /// 0 for negative or NaN, at most 10^15 (31 000 years) for anything longer.
    static func wholeMillis(_ seconds: Double) -> Int {
        let ms = (seconds * 1000).rounded(.up)
        guard ms > 0 else { return 0 }
        return ms < 1e15 ? Int(ms) : 1_000_000_000_000_000
    }
}

extension HTTPResult {
    /// Seconds to wait from a `Retry-After` header: delta-seconds (digits only, any length:
    /// possibly huge, or infinite, for callers to cap), or an HTTP-date ("Sun, 06 Nov 1994
    /// 08:49:37 GMT") measured against this machine's clock. Anything else is ignored.
    var retryAfter: Double? {
        guard let v = header("retry-after")?.trimmingSpaces(), !v.isEmpty else { return nil }
        if v.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) {
            var s = 0.0  // a Double never traps: more than 308 digits is infinity
            for c in v.utf8 { s = s * 10 + Double(c - 48) }
            return s
        }
        let when = curl_getdate(v, nil)  // libcurl parses the HTTP date formats
        guard when >= 0 else { return nil }
        return max(0, Double(when) - Double(wallMillis()) / 1000)
    }
}

extension ApixoError {
    /// Takes the answer's Retry-After: the seconds, and the header as sent (for messages).
    mutating func takeRetryAfter(from r: HTTPResult) {
        retryAfter = r.retryAfter
        retryAfterHeader = retryAfter == nil ? nil : r.header("retry-after").map { String($0.trimmingSpaces().prefix(64)) }
    }

    /// The error a call ends with when the server's Retry-After is past `cap` seconds: its
    /// message says what the server asked for. Unchanged otherwise.
    func beyondRetryAfterCap(_ cap: Double, capMs: Int) -> ApixoError {
        guard let ra = retryAfter, ra > cap else { return self }
        return appending("; the server asked to wait (Retry-After: \(retryAfterHeader ?? "?")), "
                         + "more than the \(capMs) ms cap (max_retry_after_ms)")
    }
}

/// Turns HTTP results into the API's meaning: the envelope's `data`, or an error with a code,
/// a one-line message, and whether resending could help.
enum WireProtocol {
    /// The envelope's data on success.
    static func interpret(_ r: HTTPResult, what: String) -> Result<JSON, ApixoError> {
        if r.aborted { return .failure(ApixoError(.closed, "\(what): the client is closing")) }
        if r.bodyTooLarge {
            var e = ApixoError(.protocol, "\(what): answer larger than the \(r.bodyBytes - 1)-byte limit")
            e.retryable = true
            return .failure(e)
        }
        if r.curlCode != CURLE_OK {
            let code: ApixoCode = r.curlCode == CURLE_OPERATION_TIMEDOUT ? .timeout : .network
            var e = ApixoError(code, "\(what): \(r.curlMessage)")
            e.retryable = true
            return .failure(e)
        }
        let status = r.status
        let parsed = try? JSON.parse(r.body)
        guard let env = parsed?.objectValue else {
            if status >= 400 || status < 200 {
                return .failure(statusError(status, "\(what): HTTP \(status)", answer: r))
            }
            var e = ApixoError(.protocol, "\(what): answer is not a JSON envelope (HTTP \(status))")
            e.retryable = true
            return .failure(e)
        }
        var code = status
        if let c = env["code"]?.int64Value { code = Int(clamping: c) } else if status < 300 {
            var e = ApixoError(.protocol, "\(what): envelope has no integer code")
            e.retryable = true
            return .failure(e)
        }
        // An error in either the HTTP status or the envelope wins over a 200 in the other.
        if status >= 300 || status < 200 { code = status }
        if code != 200 {
            var msg = env["message"]?.stringValue ?? "error"
            if let detail = env["data"]?["error"]?.stringValue, !detail.isEmpty { msg += ": " + detail }
            return .failure(statusError(code, "\(what): \(code) \(msg)", answer: r))
        }
        guard let data = env["data"], data.objectValue != nil else {
            var e = ApixoError(.protocol, "\(what): envelope has no data object")
            e.retryable = true
            return .failure(e)
        }
        return .success(data)
    }

    static func statusError(_ status: Int, _ message: String, answer r: HTTPResult) -> ApixoError {
        var e = ApixoError(ApixoCode.forStatus(status), message)
        e.httpStatus = status
        e.takeRetryAfter(from: r)
        e.retryable = status == 429 || status == 408 || (500...599).contains(status)
        return e
    }
}
