import Glibc

/// The durable task journal: an append-only file of checksummed JSON lines, one per event
/// (intent, sending, accepted, watch, terminal, delivered), each fsync'd before the library
/// moves on. A torn last line fails its checksum and is skipped; the file is compacted
/// (rewrite plus rename) when finished entries dominate. One client per file (flock).
final class Journal {
    /// Everything the journal knows about one submit or watch.
    struct Entry {
        var seq: Int64
        var kind: String          // "intent" or "watch"
        var model: String
        var tag: String?
        var body: String?
        var sending = false
        var taskId: String?
        var terminalCode: ApixoCode?
        var terminalMessage: String?
        var snapshotJSON: String?
        var delivered = false

        /// Nothing more will ever happen to it.
        var finished: Bool { delivered }
    }

    /// Sequence numbers are 1, 2, 3, ...: a record numbered outside 0...maxSeq was not
    /// written by this library and is skipped, and numbering can never overflow.
    static let maxSeq: Int64 = 1 << 53
    /// A line longer than this was not written by this library: skipped like a torn record,
    /// without ever being held in memory whole. Records are kept below it when written.
    static let maxLine = 32 << 20
    /// A journal larger than this is refused: a compacted journal of live tasks is far smaller.
    static let maxFile: Int64 = 1 << 30

    let path: String
    private var fd: Int32
    private let mutex = Mutex()
    private var nextSeq: Int64 = 1
    private var entries: [Int64: Entry] = [:]
    private var appendsSinceCompaction = 0
    /// The unfinished entries found at open, handed to `resume` once.
    private var leftover: [Entry] = []
    private var resumed = false

    init(path: String) throws {
        self.path = path
        fd = try Journal.openRegularFile(path)
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let busy = errno == EWOULDBLOCK
            Glibc.close(fd)
            throw ApixoError(.io, busy ? "journal \(path) is in use by another client"
                                       : "journal \(path): cannot lock: \(String(cString: strerror(errno)))")
        }
        do {
            try load()
            try compact()
        } catch {
            Glibc.close(fd)
            throw error
        }
        leftover = entries.values.filter { !$0.finished }.sorted { $0.seq < $1.seq }
    }

    func close() {
        mutex.with {
            if fd >= 0 {
                Glibc.close(fd)  // releases the lock
                fd = -1
            }
        }
    }

    // MARK: reading

    /// Opens (creating) the journal and refuses, without blocking, anything but a regular file
    /// of at most `maxFile` bytes: a FIFO, a device or a directory is opened non-blocking (or
    /// not at all), checked and closed again.
    static func openRegularFile(_ path: String) throws -> Int32 {
        func refuse(_ mode: mode_t) -> ApixoError {
            let kind: String
            switch mode & S_IFMT {
            case S_IFDIR: kind = "a directory"
            case S_IFIFO: kind = "a FIFO"
            case S_IFCHR: kind = "a character device"
            case S_IFBLK: kind = "a block device"
            case S_IFSOCK: kind = "a socket"
            default: kind = "not a file"
            }
            return ApixoError(.io, "journal \(path) is \(kind), not a regular file")
        }
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG { throw refuse(st.st_mode) }
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0o644)
        if fd < 0 {
            if errno == EISDIR { throw refuse(S_IFDIR) }
            throw ApixoError(.io, "journal \(path): \(String(cString: strerror(errno)))")
        }
        // Checked again on what was opened: the path may have changed since the stat.
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            Glibc.close(fd)
            throw refuse(st.st_mode)
        }
        guard Int64(st.st_size) <= maxFile else {
            Glibc.close(fd)
            throw ApixoError(.io, "journal \(path) is larger than \(maxFile >> 20) MiB (\(st.st_size) bytes): "
                                + "not a journal of this library")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Reads the records in 64 KiB chunks: memory stays bounded by `maxLine` whatever the file
    /// holds. A line that fails its checksum, is too long or has no newline is skipped.
    private func load() throws {
        var buf = [UInt8](repeating: 0, count: 65536)
        var line: [UInt8] = []
        var overlong = false  // the current line passed maxLine: dropped up to its newline
        var total: Int64 = 0
        _ = lseek(fd, 0, SEEK_SET)
        while true {
            let n = read(fd, &buf, buf.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw ApixoError(.io, "journal \(path): read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }  // a last line without newline is a torn record: skipped
            total += Int64(n)
            if total > Journal.maxFile {
                throw ApixoError(.io, "journal \(path) is larger than \(Journal.maxFile >> 20) MiB: not a journal of this library")
            }
            var start = 0
            while start < n {
                let nl = buf[start..<n].firstIndex(of: 10)
                if !overlong {
                    line += buf[start..<(nl ?? n)]
                    if line.count > Journal.maxLine {
                        overlong = true
                        line = []
                    }
                }
                guard let nl else { break }
                if !overlong, let rec = Journal.decode(line) { apply(rec) }
                overlong = false
                line.removeAll(keepingCapacity: line.count < 1 << 20)
                start = nl + 1
            }
        }
    }

    static func decode(_ line: [UInt8]) -> JSONObject? {
        guard line.count > 9, line[8] == UInt8(ascii: " ") else { return nil }
        guard let want = UInt32(String(decoding: line[0..<8], as: UTF8.self), radix: 16) else { return nil }
        let payload = Array(line[9...])
        guard crc32(payload) == want, let obj = (try? JSON.parse(payload))?.objectValue else { return nil }
        return obj
    }

    private func apply(_ r: JSONObject) {
        guard let t = r["t"]?.stringValue, let seq = r["seq"]?.int64Value, (0...Journal.maxSeq).contains(seq)
        else { return }
        nextSeq = max(nextSeq, seq + 1)
        switch t {
        case "intent", "watch":
            entries[seq] = Entry(seq: seq, kind: t, model: r["model"]?.stringValue ?? Request.defaultModel,
                                 tag: r["tag"]?.stringValue, body: r["body"]?.stringValue,
                                 taskId: r["id"]?.stringValue)
        case "sending": entries[seq]?.sending = true
        case "accepted": entries[seq]?.taskId = r["id"]?.stringValue
        case "terminal":
            entries[seq]?.terminalCode = r["code"]?.int64Value.flatMap { ApixoCode(rawValue: Int32(truncatingIfNeeded: $0)) }
            entries[seq]?.terminalMessage = r["msg"]?.stringValue
            entries[seq]?.snapshotJSON = r["snap"]?.stringValue
        case "delivered": entries[seq]?.delivered = true
        default: break
        }
    }

    // MARK: writing

    private static func encode(_ r: JSONObject) -> [UInt8] {
        let payload = Array(JSON.object(r).serialized().utf8)
        var hex = String(crc32(payload), radix: 16)
        while hex.utf8.count < 8 { hex = "0" + hex }
        return Array(hex.utf8) + [UInt8(ascii: " ")] + payload + [10]
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            off += n
        }
        return true
    }

    /// Appends one record durably. Journal write errors are reported to the caller.
    @discardableResult
    private func append(_ r: JSONObject) -> Bool {
        mutex.with {
            guard fd >= 0 else { return false }
            apply(r)
            let ok = writeAll(fd, Journal.encode(r)) && fdatasync(fd) == 0
            appendsSinceCompaction += 1
            if appendsSinceCompaction >= 512 { try? compactLocked() }
            return ok
        }
    }

    /// Records a submit before it is sent; returns its sequence number.
    func intent(model: String, body: String, tag: String?) throws -> Int64 {
        // JSON text at most doubles as a string inside a record: keep the record readable.
        guard body.utf8.count + (tag?.utf8.count ?? 0) * 6 < Journal.maxLine / 2 - 1024 else {
            throw ApixoError(.io, "journal \(path): the request (\(body.utf8.count) bytes) is too large to journal")
        }
        return try begin("intent", model: model, [("body", .string(body))], tag: tag)
    }

    /// Records a watch of an existing task.
    func watch(model: String, taskId: String, tag: String?) throws -> Int64 {
        try begin("watch", model: model, [("id", .string(taskId))], tag: tag)
    }

    /// Appends the first record of a new entry and returns its sequence number.
    private func begin(_ kind: String, model: String, _ fields: [(String, JSON)], tag: String?) throws -> Int64 {
        let seq = mutex.with { () -> Int64? in
            guard nextSeq <= Journal.maxSeq else { return nil }
            nextSeq += 1
            return nextSeq - 1
        }
        guard let seq else { throw ApixoError(.io, "journal \(path): sequence numbers exhausted; start a new journal") }
        var r = JSONObject([("t", .string(kind)), ("seq", .int(seq)), ("model", .string(model))] + fields)
        if let tag { r["tag"] = .string(tag) }
        guard append(r) else { throw ApixoError(.io, "journal \(path): write failed: \(String(cString: strerror(errno)))") }
        return seq
    }

    func sending(seq: Int64) { append(JSONObject([("t", .string("sending")), ("seq", .int(seq))])) }

    func accepted(seq: Int64, taskId: String) {
        append(JSONObject([("t", .string("accepted")), ("seq", .int(seq)), ("id", .string(taskId))]))
    }

    func terminal(seq: Int64, code: ApixoCode, message: String, snapshot: TaskSnapshot?) {
        var r = JSONObject([("t", .string("terminal")), ("seq", .int(seq)), ("code", .int(Int64(code.rawValue))),
                            ("msg", .string(message))])
        // A snapshot too large for a readable record is left out: the outcome code still is.
        if let s = snapshot, s.json.utf8.count < Journal.maxLine / 2 - (1 << 16) { r["snap"] = .string(s.json) }
        append(r)
    }

    func delivered(seq: Int64) { append(JSONObject([("t", .string("delivered")), ("seq", .int(seq))])) }

    // MARK: compaction

    private func compact() throws {
        try mutex.with { try compactLocked() }
    }

    /// Rewrites the live entries to a temporary file and renames it over the journal.
    private func compactLocked() throws {
        appendsSinceCompaction = 0
        for (k, e) in entries where e.finished { entries[k] = nil }
        var out: [UInt8] = []
        for e in entries.values.sorted(by: { $0.seq < $1.seq }) {
            var r = JSONObject([("t", .string(e.kind)), ("seq", .int(e.seq)), ("model", .string(e.model))])
            if let tag = e.tag { r["tag"] = .string(tag) }
            if let b = e.body { r["body"] = .string(b) }
            if e.kind == "watch", let id = e.taskId { r["id"] = .string(id) }
            out += Journal.encode(r)
            if e.sending { out += Journal.encode(JSONObject([("t", .string("sending")), ("seq", .int(e.seq))])) }
            if e.kind == "intent", let id = e.taskId {
                out += Journal.encode(JSONObject([("t", .string("accepted")), ("seq", .int(e.seq)), ("id", .string(id))]))
            }
            if let c = e.terminalCode {
                var t = JSONObject([("t", .string("terminal")), ("seq", .int(e.seq)), ("code", .int(Int64(c.rawValue))),
                                    ("msg", .string(e.terminalMessage ?? ""))])
                if let s = e.snapshotJSON { t["snap"] = .string(s) }
                out += Journal.encode(t)
            }
        }
        // Keep the sequence counter past every number ever used.
        out += Journal.encode(JSONObject([("t", .string("seq")), ("seq", .int(nextSeq - 1))]))
        let tmp = path + ".compact"
        let tfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard tfd >= 0 else { throw ApixoError(.io, "journal \(tmp): \(String(cString: strerror(errno)))") }
        guard writeAll(tfd, out), fsync(tfd) == 0 else {
            Glibc.close(tfd)
            unlink(tmp)
            throw ApixoError(.io, "journal \(tmp): write failed")
        }
        // The new file must carry the lock before it replaces the old one.
        if flock(tfd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, path) != 0 {
            Glibc.close(tfd)
            unlink(tmp)
            throw ApixoError(.io, "journal \(path): cannot replace during compaction")
        }
        Journal.syncDirectory(of: path)
        Glibc.close(fd)
        // Reopen for appending: the descriptor we wrote with is write-only at offset end.
        fd = tfd
        _ = lseek(fd, 0, SEEK_END)
    }

    static func syncDirectory(of path: String) {
        var dir = "."
        if let slash = path.lastIndex(of: "/") { dir = slash == path.startIndex ? "/" : String(path[..<slash]) }
        let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 {
            fsync(d)
            Glibc.close(d)
        }
    }

    /// The unfinished entries of earlier runs, once.
    func takeLeftover() -> [Entry] {
        mutex.with {
            if resumed { return [] }
            resumed = true
            return leftover
        }
    }
}

private let crcTable: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    return c
}

/// CRC-32 (IEEE), as zlib computes it.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
}
