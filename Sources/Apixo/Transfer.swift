import CCurl
import Glibc

/// One HTTP request as the engine sends it.
struct HTTPRequest {
    enum Method { case get, post }
    var method: Method
    var url: String
    var headers: [String] = []
    var body: [UInt8] = []
    var timeoutMs: Int
    /// A fresh connection, never a reused one: curl silently resends a request whose reused
    /// connection died before any answer, which must never happen to a submit.
    var freshConnection = false
    var followRedirects = false
    /// Largest body accepted; more aborts the transfer.
    var maxBodyBytes = 8 << 20
    /// Streams the body to this file descriptor instead of memory.
    var sinkFD: Int32 = -1
    /// When set, `timeoutMs` bounds the time without progress instead of the whole
    /// transfer (downloads of large files on slow links).
    var idleTimeout = false
    /// With `idleTimeout`: the bound of the whole transfer, connect to last byte
    /// (CURLOPT_TIMEOUT_MS), so that a body that trickles still ends.
    var totalTimeoutMs: Int?
    /// Runs on the engine thread once the connection is up, just before the request goes
    /// out (CURLOPT_PREREQFUNCTION): the journal's "sending" record is written there.
    var beforeSend: (() -> Void)?
}

/// What came back: a curl result, and when there was an answer, its status, headers and body.
struct HTTPResult {
    var curlCode: CURLcode = CURLE_OK
    var curlMessage = ""
    var status = 0
    /// The headers the library reads (`keptHeaders`), names in lower case.
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    var bodyBytes = 0
    /// Bytes of the request (headers and body) that went out.
    var requestBytesSent = 0
    var bodyTooLarge = false
    /// Whether the request was about to go out (set by the `beforeSend` hook).
    var sendStarted = false
    var hadSendHook = false
    var writeFailed = false
    /// Aborted by the client (shutdown).
    var aborted = false
    /// Ended by the engine's idle watchdog (`HTTPRequest.idleTimeout`), not by curl's timeout.
    var idleTimedOut = false

    /// The headers the library reads (lower case); every other line is skipped without
    /// building a String (this runs for every header line of every answer).
    static let keptHeaders: [[UInt8]] = ["retry-after", "content-length", "content-type"].map { Array($0.utf8) }

    /// Takes one raw header line as curl hands it over (status line or "Name: value\r\n").
    mutating func addHeaderLine(_ line: UnsafeRawBufferPointer) {
        let n = line.count
        if n >= 5, line[0] == 0x48, line[1] == 0x54, line[2] == 0x54, line[3] == 0x50, line[4] == 0x2F {  // "HTTP/"
            headers.removeAll()  // a new response (redirect or 100) starts
            return
        }
        guard let colon = line.firstIndex(of: 0x3A) else { return }  // ":"
        guard let name = HTTPResult.keptHeaders.first(where: { known in
            known.count == colon && zip(known, line).allSatisfy { k, b in k == (b | 0x20) }
        }) else { return }
        let value = String(decoding: UnsafeRawBufferPointer(rebasing: line[(colon + 1)...]), as: UTF8.self)
        headers.append((String(decoding: name, as: UTF8.self), value.trimmingSpaces()))
    }

    func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.last { $0.0 == n }?.1
    }

    /// True when no byte of the request left this machine: safe to resend anything.
    var certainlyNotSent: Bool {
        if hadSendHook && !sendStarted && curlCode != CURLE_OK { return true }
        switch curlCode {
        case CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT:
            return true
        default:
            return curlCode != CURLE_OK && requestBytesSent == 0 && status == 0
        }
    }
}

/// A live curl easy handle and what it collects. Owned by the engine thread.
final class Transfer {
    let easy: UnsafeMutableRawPointer
    var headerList: UnsafeMutablePointer<curl_slist>?
    var result = HTTPResult()
    let request: HTTPRequest
    let completion: (HTTPResult) -> Void
    /// When the engine handed it to curl.
    var startedAt: Double = 0
    private var bodyStorage: [CChar] = []

    init?(_ request: HTTPRequest, caFile: String?, completion: @escaping (HTTPResult) -> Void) {
        guard let easy = curl_easy_init() else { return nil }
        self.easy = easy
        self.request = request
        self.completion = completion
        configure(caFile: caFile)
    }

    deinit {
        curl_easy_cleanup(easy)
        if let headerList { curl_slist_free_all(headerList) }
    }

    private func configure(caFile: String?) {
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = apixo_curl_setopt_str(easy, CURLOPT_URL, request.url)
        _ = apixo_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = apixo_curl_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        if !request.idleTimeout {
            _ = apixo_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, request.timeoutMs)
        } else if let total = request.totalTimeoutMs {
            _ = apixo_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, total)
        }
        _ = apixo_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, min(request.timeoutMs, 15_000))
        _ = apixo_curl_setopt_str(easy, CURLOPT_USERAGENT, "apixo/\(apixoVersion)")
        _ = apixo_curl_setopt_str(easy, CURLOPT_ACCEPT_ENCODING, "")
        _ = apixo_curl_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        if let caFile { _ = apixo_curl_setopt_str(easy, CURLOPT_CAINFO, caFile) }
        if request.freshConnection { _ = apixo_curl_setopt_long(easy, CURLOPT_FRESH_CONNECT, 1) }
        if request.followRedirects {
            _ = apixo_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 1)
            _ = apixo_curl_setopt_long(easy, CURLOPT_MAXREDIRS, 5)
            _ = apixo_curl_setopt_str(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        }
        for h in request.headers { headerList = curl_slist_append(headerList, h) }
        // No "Expect: 100-continue" round trip for our small bodies.
        headerList = curl_slist_append(headerList, "Expect:")
        _ = apixo_curl_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList)
        if request.method == .post {
            bodyStorage = request.body.map { CChar(bitPattern: $0) }
            _ = apixo_curl_setopt_long(easy, CURLOPT_POST, 1)
            _ = apixo_curl_setopt_long(easy, CURLOPT_POSTFIELDSIZE, request.body.count)
            _ = bodyStorage.withUnsafeMutableBufferPointer { buf in
                apixo_curl_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, buf.baseAddress)
            }
        }
        _ = apixo_curl_setopt_ptr(easy, CURLOPT_WRITEDATA, me)
        _ = apixo_curl_setopt_datafn(easy, CURLOPT_WRITEFUNCTION) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            return t.receive(UnsafeRawPointer(ptr!), size * n)
        }
        if request.beforeSend != nil {
            result.hadSendHook = true
            _ = apixo_curl_setopt_ptr(easy, CURLOPT_PREREQDATA, me)
            _ = apixo_curl_setopt_prereq(easy) { ud, _, _, _, _ in
                let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
                if !t.result.sendStarted {
                    t.result.sendStarted = true
                    t.request.beforeSend?()
                }
                return CURL_PREREQFUNC_OK
            }
        }
        _ = apixo_curl_setopt_ptr(easy, CURLOPT_HEADERDATA, me)
        _ = apixo_curl_setopt_datafn(easy, CURLOPT_HEADERFUNCTION) { ptr, size, n, ud in
            let t = Unmanaged<Transfer>.fromOpaque(ud!).takeUnretainedValue()
            t.header(UnsafeRawPointer(ptr!), size * n)
            return size * n
        }
    }

    private func receive(_ p: UnsafeRawPointer, _ n: Int) -> Int {
        if result.bodyBytes + n > request.maxBodyBytes {
            result.bodyTooLarge = true
            return 0
        }
        result.bodyBytes += n
        receivedBytes += n
        if request.sinkFD >= 0 {
            var off = 0
            while off < n {
                let w = write(request.sinkFD, p + off, n - off)
                if w < 0 {
                    if errno == EINTR { continue }
                    result.writeFailed = true
                    return 0
                }
                off += w
            }
        } else {
            result.body.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
        }
        return n
    }

    /// Bytes received so far, headers included: the engine's idle watchdog compares them.
    private(set) var receivedBytes = 0

    private func header(_ p: UnsafeRawPointer, _ n: Int) {
        receivedBytes += n
        result.addHeaderLine(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// Fills in status and counters once curl is done with the handle.
    func finish(_ code: CURLcode) -> HTTPResult {
        result.curlCode = code
        var status = 0
        _ = apixo_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        result.status = status
        var sent = 0
        _ = apixo_curl_getinfo_long(easy, CURLINFO_REQUEST_SIZE, &sent)
        result.requestBytesSent = sent
        if code != CURLE_OK {
            result.curlMessage = String(cString: curl_easy_strerror(code))
        }
        return result
    }
}

extension Substring {
    /// Without leading and trailing white space ("\r\n" is one Character, also white space).
    func trimmingSpaces() -> String {
        var s = self
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

extension String {
    func trimmingSpaces() -> String { self[...].trimmingSpaces() }
}
