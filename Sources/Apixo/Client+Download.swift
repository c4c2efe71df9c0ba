import CCurl
import Glibc

extension Client {
    /// Downloads `url` to `path`: streamed to a temporary file beside it, then renamed into
    /// place. Only http and https; at most `maxDownloadBytes`. Retries transient failures.
    public func download(url: String, to path: String) throws {
        _ = try downloadFile(url: url) { _ in path }
    }

    /// Downloads every result of a successful task into `dir` (created if missing) as
    /// `<taskId>-<n>.<ext>`, n from 1. Returns the paths.
    public func downloadResults(_ task: TaskSnapshot, to dir: String) throws -> [String] {
        try checkProcess()
        guard !task.id.isEmpty, !task.id.contains("/") else {
            throw ApixoError(.invalidArgument, "task has no usable id")
        }
        guard !dir.isEmpty else { throw ApixoError(.invalidArgument, "dir must not be empty") }
        try Client.makeDirectories(dir)
        var base = dir  // "out/" gives out/<file>, not out//<file>; "/" gives /<file>
        while base.hasSuffix("/") { base.removeLast() }
        var paths: [String] = []
        for (i, url) in task.resultURLs.enumerated() {
            let p = try downloadFile(url: url) { contentType in
                "\(base)/\(task.id)-\(i + 1).\(Client.fileExtension(url: url, contentType: contentType))"
            }
            paths.append(p)
        }
        return paths
    }

    static func fileExtension(url: String, contentType: String?) -> String {
        var path = Substring(url)
        if let q = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<q] }
        if let slash = path.lastIndex(of: "/") { path = path[path.index(after: slash)...] }
        if let dot = path.lastIndex(of: ".") {
            let ext = path[path.index(after: dot)...].lowercased()
            switch ext {
            case "jpg", "jpeg": return "jpg"
            case "png", "webp", "gif": return ext
            default: break
            }
        }
        switch contentType?.lowercased().split(separator: ";").first.map({ String($0).trimmingSpaces() }) {
        case "image/jpeg"?: return "jpg"
        case "image/png"?: return "png"
        case "image/webp"?: return "webp"
        case "image/gif"?: return "gif"
        default: return "bin"
        }
    }

    static func makeDirectories(_ dir: String) throws {
        var prefix = dir.hasPrefix("/") ? "/" : ""
        for part in dir.split(separator: "/") {
            prefix += part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw ApixoError(.io, "cannot create directory \(prefix): \(String(cString: strerror(errno)))")
            }
            prefix += "/"
        }
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw ApixoError(.io, "\(dir) is not a directory")
        }
    }

    /// The download machinery: `finalPath` names the file once the Content-Type is known.
    func downloadFile(url: String, finalPath: (String?) -> String) throws -> String {
        try checkOpen()
        guard Request.isHTTPURL(url) else { throw ApixoError(.invalidArgument, "download URL must be http or https") }
        var attempt = 0
        while true {
            do {
                return try downloadOnce(url: url, finalPath: finalPath)
            } catch let caught as ApixoError where caught.retryable && attempt < options.maxRetries {
                var e = caught
                guard let wait = retryDelay(&e, attempt: attempt) else { throw e }
                logger.log(.info, "\(e.message); retrying the download in \(Bounded.wholeMillis(wait)) ms")
                attempt += 1
                guard sleepUnlessClosed(wait) else { throw ApixoError(.closed, "the client closed during the download") }
            }
        }
    }

    private func downloadOnce(url: String, finalPath: (String?) -> String) throws -> String {
        // The temporary file sits beside the destination so that rename is atomic.
        let probe = finalPath(nil)
        var template = Array("\(probe).part-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw ApixoError(.io, "cannot create \(probe).part-XXXXXX: \(String(cString: strerror(errno)))")
        }
        let tmp = String(cString: template)
        var keep = false
        defer {
            Glibc.close(fd)
            if !keep { unlink(tmp) }
        }
        // The HTTP timeout bounds each stretch without data; the download timeout the whole file.
        var req = HTTPRequest(method: .get, url: url, timeoutMs: options.timeoutMs)
        req.idleTimeout = true
        req.totalTimeoutMs = options.downloadTimeoutMs
        req.followRedirects = true
        req.maxBodyBytes = Int(clamping: options.maxDownloadBytes)
        req.sinkFD = fd
        let w = Waiter<HTTPResult>()
        try onEngine { [self] in
            if shutDown {
                var r = HTTPResult()
                r.aborted = true
                w.fulfill(r)
            } else {
                startLogged(req) { w.fulfill($0) }
            }
        }
        let r = w.wait(until: nil)!
        if r.aborted { throw ApixoError(.closed, "the client closed during the download") }
        if r.bodyTooLarge {
            throw ApixoError(.protocol, "download of \(url) exceeds the \(options.maxDownloadBytes)-byte limit")
        }
        if r.writeFailed { throw ApixoError(.io, "writing \(tmp) failed: \(String(cString: strerror(errno)))") }
        if r.curlCode == CURLE_OPERATION_TIMEDOUT, !r.idleTimedOut, r.status != 0 {
            var e = ApixoError(.timeout, "download of \(url): not complete within the \(options.downloadTimeoutMs) ms "
                                         + "download timeout (\(r.bodyBytes) bytes received)")
            e.retryable = true
            throw e
        }
        if r.curlCode != CURLE_OK {
            var e = ApixoError(r.curlCode == CURLE_OPERATION_TIMEDOUT ? .timeout : .network, "download of \(url): \(r.curlMessage)")
            e.retryable = true
            throw e
        }
        guard (200...299).contains(r.status) else {
            let code: ApixoCode = r.status == 404 || r.status == 410 ? .notFound : ApixoCode.forStatus(r.status)
            var e = ApixoError(code, "download of \(url): HTTP \(r.status)")
            e.retryable = r.status == 429 || r.status >= 500
            e.takeRetryAfter(from: r)
            throw e
        }
        if let text = r.header("content-length") {
            guard let cl = Int(text), cl >= 0 else {
                throw ApixoError(.protocol, "download of \(url): Content-Length '\(text.prefix(40))' is not a byte count")
            }
            // curl decodes a compressed body: its length is then not the Content-Length.
            let encoded = r.header("content-encoding").map { $0.lowercased() != "identity" } ?? false
            if !encoded, cl != r.bodyBytes {
                var e = ApixoError(.network, "download of \(url): got \(r.bodyBytes) of \(cl) bytes")
                e.retryable = true
                throw e
            }
        }
        guard fsync(fd) == 0 else { throw ApixoError(.io, "fsync \(tmp): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o644)
        let path = finalPath(r.header("content-type"))
        guard rename(tmp, path) == 0 else {
            throw ApixoError(.io, "cannot move the download to \(path): \(String(cString: strerror(errno)))")
        }
        keep = true
        Journal.syncDirectory(of: path)
        return path
    }
}
