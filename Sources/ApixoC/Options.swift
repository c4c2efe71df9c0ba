import Apixo
import Glibc

@_cdecl("apixo_options_new")
public func apixo_options_new() -> OpaquePointer? { retained(OptionsBox()) }

@_cdecl("apixo_options_free")
public func apixo_options_free(_ o: OpaquePointer?) { release(o, as: OptionsBox.self) }

/// A path argument where NULL means "none" and "" is an error.
private func optionalPath(_ path: UnsafePointer<CChar>?) throws -> String? {
    guard let path else { return nil }
    let p = String(cString: path)
    guard !p.isEmpty else { throw invalid("path must not be empty") }
    return p
}

private func withOptions(_ o: OpaquePointer?, _ body: (OptionsBox) throws -> Void) -> Int32 {
    guarded { try body(try handle(o, "opts", as: OptionsBox.self)) }
}

@_cdecl("apixo_options_set_api_key")
public func apixo_options_set_api_key(_ o: OpaquePointer?, _ key: UnsafePointer<CChar>?) -> Int32 {
    withOptions(o) { box in
        guard let key else { box.options.apiKey = nil; return }  // NULL: back to APIXO_API_KEY
        try box.options.setAPIKey(String(cString: key))
    }
}

@_cdecl("apixo_options_set_base_url")
public func apixo_options_set_base_url(_ o: OpaquePointer?, _ url: UnsafePointer<CChar>?) -> Int32 {
    withOptions(o) { box in
        guard let url else { box.options.baseURL = nil; return }  // NULL: back to APIXO_BASE_URL
        try box.options.setBaseURL(String(cString: url))
    }
}

@_cdecl("apixo_options_set_timeout_ms")
public func apixo_options_set_timeout_ms(_ o: OpaquePointer?, _ ms: Int) -> Int32 {
    withOptions(o) { try $0.options.setTimeoutMs(ms) }
}

@_cdecl("apixo_options_set_max_retries")
public func apixo_options_set_max_retries(_ o: OpaquePointer?, _ n: Int32) -> Int32 {
    withOptions(o) { try $0.options.setMaxRetries(Int(n)) }
}

@_cdecl("apixo_options_set_limits")
public func apixo_options_set_limits(_ o: OpaquePointer?, _ rpm: Int32, _ tasks: Int32) -> Int32 {
    withOptions(o) { try $0.options.setLimits(requestsPerMinute: Int(rpm), maxConcurrentTasks: Int(tasks)) }
}

@_cdecl("apixo_options_set_time_scale")
public func apixo_options_set_time_scale(_ o: OpaquePointer?, _ scale: Double) -> Int32 {
    withOptions(o) { try $0.options.setTimeScale(scale) }
}

@_cdecl("apixo_options_set_ca_file")
public func apixo_options_set_ca_file(_ o: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    withOptions(o) { $0.options.caFile = try optionalPath(path) }
}

@_cdecl("apixo_options_set_logger")
public func apixo_options_set_logger(_ o: OpaquePointer?,
                                     _ fn: (@convention(c) (Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void)?,
                                     _ minLevel: Int32, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    withOptions(o) { box in
        guard let level = LogLevel(rawValue: minLevel) else {
            throw invalid("min_level must be APIXO_LOG_DEBUG (0) to APIXO_LOG_ERROR (3)")
        }
        box.logFn = fn
        box.logUserData = userData
        box.options.logLevel = level
        if let fn {
            let ud = UInt(bitPattern: userData)
            box.options.logger = { level, message in
                message.withCString { fn(level.rawValue, $0, UnsafeMutableRawPointer(bitPattern: ud)) }
            }
        } else {
            box.options.logger = nil
        }
    }
}

@_cdecl("apixo_options_set_max_download_bytes")
public func apixo_options_set_max_download_bytes(_ o: OpaquePointer?, _ n: Int64) -> Int32 {
    withOptions(o) { try $0.options.setMaxDownloadBytes(n) }
}

@_cdecl("apixo_options_set_max_retry_after_ms")
public func apixo_options_set_max_retry_after_ms(_ o: OpaquePointer?, _ ms: Int) -> Int32 {
    withOptions(o) { try $0.options.setMaxRetryAfterMs(ms) }
}

@_cdecl("apixo_options_set_download_timeout_ms")
public func apixo_options_set_download_timeout_ms(_ o: OpaquePointer?, _ ms: Int) -> Int32 {
    withOptions(o) { try $0.options.setDownloadTimeoutMs(ms) }
}

@_cdecl("apixo_options_set_journal")
public func apixo_options_set_journal(_ o: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> Int32 {
    withOptions(o) { $0.options.journalPath = try optionalPath(path) }
}

@_cdecl("apixo_options_set_delivery")
public func apixo_options_set_delivery(_ o: OpaquePointer?, _ mode: Int32) -> Int32 {
    withOptions(o) { box in
        guard let m = DeliveryMode(rawValue: mode) else {
            throw invalid("mode must be APIXO_DELIVERY_THREAD (0) or APIXO_DELIVERY_QUEUE (1)")
        }
        box.options.delivery = m
    }
}

@_cdecl("apixo_options_set_shared_budget")
public func apixo_options_set_shared_budget(_ o: OpaquePointer?, _ url: UnsafePointer<CChar>?,
                                            _ namespace: UnsafePointer<CChar>?) -> Int32 {
    withOptions(o) { box in
        try box.options.setSharedBudget(url: url.map { String(cString: $0) }, namespace: namespace.map { String(cString: $0) })
    }
}
