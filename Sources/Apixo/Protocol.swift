import CCurl

extension HTTPResult {
    /// Seconds to wait from a `Retry-After` header: delta-seconds, or an HTTP-date
    /// ("Sun, 06 Nov 1994 08:49:37 GMT") measured against this machine's clock.
    var retryAfter: Double? {
        guard let v = header("retry-after")?.trimmingSpaces(), !v.isEmpty else { return nil }
        if let s = Double(v) { return s.isFinite ? max(0, s) : nil }
        let when = curl_getdate(v, nil)  // libcurl parses the HTTP date formats
        guard when >= 0 else { return nil }
        return max(0, Double(Int64(when) * 1000 - wallMillis()) / 1000)
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
        let retryAfter = r.retryAfter
        guard let env = parsed?.objectValue else {
            if status >= 400 || status < 200 {
                return .failure(statusError(status, "\(what): HTTP \(status)", retryAfter: retryAfter))
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
            return .failure(statusError(code, "\(what): \(code) \(msg)", retryAfter: retryAfter))
        }
        guard let data = env["data"], data.objectValue != nil else {
            var e = ApixoError(.protocol, "\(what): envelope has no data object")
            e.retryable = true
            return .failure(e)
        }
        return .success(data)
    }

    static func statusError(_ status: Int, _ message: String, retryAfter: Double?) -> ApixoError {
        var e = ApixoError(ApixoCode.forStatus(status), message)
        e.httpStatus = status
        e.retryAfter = retryAfter
        e.retryable = status == 429 || status == 408 || (500...599).contains(status)
        return e
    }
}
