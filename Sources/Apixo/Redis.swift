import CHiredis
import Glibc

/// Where a shared budget lives: `redis://[:password@]host[:port][/db]` or `unix:///path`
/// (also `unix:///path?db=N`). Parsed strictly; the password is kept only for AUTH.
struct RedisURL: Equatable {
    enum Endpoint: Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    let endpoint: Endpoint
    let password: String?
    let db: Int

    /// A redacted form for log lines and messages (never the password).
    var display: String {
        switch endpoint {
        case .tcp(let host, let port): return "redis://\(host):\(port)/\(db)"
        case .unix(let path): return "unix://\(path)" + (db == 0 ? "" : "?db=\(db)")
        }
    }

    static func parse(_ s: String) throws -> RedisURL {
        func bad(_ why: String) -> ApixoError {
            ApixoError(.invalidArgument, "shared budget URL: \(why) (want redis://[:password@]host[:port][/db] or unix:///path)")
        }
        guard !s.utf8.contains(where: { $0 <= 32 || $0 == 127 }) else { throw bad("contains spaces or control characters") }
        func number(_ t: Substring, _ what: String, _ range: ClosedRange<Int>) throws -> Int {
            // Digits only, at most 9 of them: no conversion can trap.
            guard !t.isEmpty, t.utf8.count <= 9, t.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                  let v = Int(t), range.contains(v) else {
                throw bad("\(what) must be \(range.lowerBound) to \(range.upperBound)")
            }
            return v
        }
        if s.hasPrefix("unix://") {
            var rest = s.dropFirst("unix://".count)
            var db = 0
            if let q = rest.firstIndex(of: "?") {
                let query = rest[rest.index(after: q)...]
                guard query.hasPrefix("db=") else { throw bad("the only query parameter is db=N") }
                db = try number(query.dropFirst(3), "db", 0...65535)
                rest = rest[..<q]
            }
            guard rest.hasPrefix("/"), rest.count > 1 else { throw bad("a unix socket needs an absolute path") }
            guard rest.utf8.count < 108 else { throw bad("the socket path is longer than 107 bytes") }
            return RedisURL(endpoint: .unix(path: String(rest)), password: nil, db: db)
        }
        guard s.hasPrefix("redis://") else { throw bad("unknown scheme") }
        var rest = s.dropFirst("redis://".count)
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            var auth = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if auth.hasPrefix(":") { auth = auth.dropFirst() }
            guard !auth.isEmpty else { throw bad("empty password") }
            password = String(auth)
        }
        var db = 0
        if let slash = rest.firstIndex(of: "/") {
            let d = rest[rest.index(after: slash)...]
            if !d.isEmpty { db = try number(d, "db", 0...65535) }
            rest = rest[..<slash]
        }
        var host = rest
        var port = 6379
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            host = rest[..<colon]
            port = try number(rest[rest.index(after: colon)...], "port", 1...65535)
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { throw bad("no host") }
        return RedisURL(endpoint: .tcp(host: String(host), port: port), password: password, db: db)
    }
}

/// One reply of Redis, copied out of hiredis's reply object.
enum RedisValue: Equatable {
    case string(String)
    case integer(Int64)
    case array([RedisValue])
    case null
    case status(String)
    case error(String)

    var integer: Int64? {
        if case .integer(let v) = self { return v }
        return nil
    }

    var array: [RedisValue]? {
        if case .array(let v) = self { return v }
        return nil
    }
}

/// A synchronous Redis connection with a bound on every call (connect and command timeouts).
/// After any I/O error or timeout the connection is unusable and must be replaced: hiredis
/// leaves a blocking context in an error state.
final class RedisConnection {
    private var ctx: UnsafeMutablePointer<redisContext>?
    private var scriptSHAs: [String: String] = [:]
    /// Round trips made (stats and benchmarks).
    private(set) var roundTrips = 0

    /// Connects, authenticates and selects the database, each bounded by `timeoutMs`.
    init(_ url: RedisURL, timeoutMs: Int) throws {
        let c: UnsafeMutablePointer<redisContext>?
        switch url.endpoint {
        case .tcp(let host, let port): c = apixo_redis_connect_tcp(host, Int32(port), timeoutMs)
        case .unix(let path): c = apixo_redis_connect_unix(path, timeoutMs)
        }
        guard let c else { throw ApixoError(.network, "redis \(url.display): out of memory connecting") }
        ctx = c
        if apixo_redis_error(c) != 0 {
            let why = String(cString: apixo_redis_errstr(c))
            close()
            throw ApixoError(.network, "redis \(url.display): \(why)")
        }
        _ = apixo_redis_set_timeout(c, timeoutMs)
        if let pw = url.password {
            if case .error(let e) = try command(["AUTH", pw]) {
                close()
                throw ApixoError(.unauthorized, "redis \(url.display): AUTH refused: \(String(e.prefix(120)))")
            }
        }
        if url.db != 0, case .error(let e) = try command(["SELECT", String(url.db)]) {
            close()
            throw ApixoError(.invalidArgument, "redis \(url.display): SELECT refused: \(String(e.prefix(120)))")
        }
    }

    deinit { close() }

    func close() {
        if let c = ctx { redisFree(c) }
        ctx = nil
    }

    var isOpen: Bool { ctx != nil }

    /// One command. Throws `.network` on I/O errors and timeouts (the connection is then closed);
    /// a Redis error reply is returned as `.error`, not thrown.
    func command(_ args: [String]) throws -> RedisValue {
        guard let c = ctx else { throw ApixoError(.network, "redis: not connected") }
        roundTrips += 1
        // One buffer holds every argument; hiredis reads each by pointer and length.
        var flat: [UInt8] = []
        var offsets: [Int] = []
        var lens: [Int] = []
        for a in args {
            offsets.append(flat.count)
            lens.append(a.utf8.count)
            flat.append(contentsOf: a.utf8)
        }
        flat.append(0)
        let reply: UnsafeMutableRawPointer? = flat.withUnsafeBufferPointer { b in
            var argv: [UnsafePointer<CChar>?] = offsets.map {
                UnsafeRawPointer(b.baseAddress! + $0).assumingMemoryBound(to: CChar.self)
            }
            return redisCommandArgv(c, Int32(args.count), &argv, &lens)
        }
        guard let reply else {
            let why = String(cString: apixo_redis_errstr(c))
            close()
            throw ApixoError(.network, "redis: \(why.isEmpty ? "no reply" : why)")
        }
        defer { freeReplyObject(reply) }
        return RedisConnection.copy(reply.assumingMemoryBound(to: redisReply.self), depth: 0)
    }

    private static func copy(_ r: UnsafePointer<redisReply>, depth: Int) -> RedisValue {
        func text() -> String {
            guard let s = r.pointee.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: s, count: r.pointee.len), as: UTF8.self)
        }
        switch apixo_redis_type(r) {
        case Int32(APIXO_REDIS_STRING): return .string(text())
        case Int32(APIXO_REDIS_STATUS): return .status(text())
        case Int32(APIXO_REDIS_ERROR): return .error(text())
        case Int32(APIXO_REDIS_INTEGER): return .integer(r.pointee.integer)
        case Int32(APIXO_REDIS_ARRAY):
            guard depth < 4 else { return .error("reply nested too deeply") }
            var items: [RedisValue] = []
            let n = min(r.pointee.elements, 4096)
            items.reserveCapacity(n)
            for i in 0..<n {
                if let e = apixo_redis_element(r, i) { items.append(copy(e, depth: depth + 1)) } else { items.append(.null) }
            }
            return .array(items)
        default: return .null
        }
    }

    /// Runs a Lua script by its SHA1 (EVALSHA), loading it once per connection (SCRIPT LOAD)
    /// and again when the server forgot it (NOSCRIPT after a restart or SCRIPT FLUSH).
    func eval(_ script: String, keys: [String], args: [String]) throws -> RedisValue {
        for _ in 0..<2 {
            let sha: String
            if let s = scriptSHAs[script] {
                sha = s
            } else {
                guard case .string(let s) = try command(["SCRIPT", "LOAD", script]) else {
                    throw ApixoError(.protocol, "redis: SCRIPT LOAD failed")
                }
                scriptSHAs[script] = s
                sha = s
            }
            let r = try command(["EVALSHA", sha, String(keys.count)] + keys + args)
            if case .error(let e) = r, e.hasPrefix("NOSCRIPT") {
                scriptSHAs[script] = nil
                continue
            }
            return r
        }
        throw ApixoError(.protocol, "redis: the script could not be loaded")
    }
}
