import Apixo
import Glibc

private func errnoText() -> String { String(cString: strerror(errno)) }

/// The whole file, or nil when it does not exist.
func readWholeFile(_ path: String) throws -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        if errno == ENOENT { return nil }
        throw CLIFailure(ExitStatus.localIO, "cannot open \(path): \(errnoText())", code: .io)
    }
    defer { close(fd) }
    return try readAll(fd, name: path)
}

/// The most the CLI reads of one input file (a batch of a million 200-byte lines fits).
let maxInputBytes = 256 << 20

/// Everything left to read on `fd` (`name` is for messages), at most `maxInputBytes`: a bigger
/// input (or an endless one, `/dev/zero`) is refused rather than read until memory runs out.
func readAll(_ fd: Int32, name path: String) throws -> [UInt8] {
    var data: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(fd, &buf, buf.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw CLIFailure(ExitStatus.localIO, "cannot read \(path): \(errnoText())", code: .io)
        }
        if n == 0 { break }
        guard data.count + n <= maxInputBytes else {
            throw CLIFailure(ExitStatus.badInput, "\(path) is larger than \(maxInputBytes >> 20) MiB: split it into smaller batches",
                             code: .invalidArgument)
        }
        data.append(contentsOf: buf[0..<n])
    }
    return data
}

/// `mkdir -p`.
func makeDirectories(_ dir: String) throws {
    var prefix = dir.hasPrefix("/") ? "/" : ""
    for part in dir.split(separator: "/") {
        prefix += part
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw CLIFailure(ExitStatus.localIO, "cannot create directory \(prefix): \(errnoText())", code: .io)
        }
        prefix += "/"
    }
    var st = stat()
    guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
        throw CLIFailure(ExitStatus.localIO, "\(dir) is not a directory", code: .io)
    }
}

/// Makes sure files can be created in `dir` (created if missing) before anything is sent:
/// a paid task must not finish only to find that its images cannot be saved. Creates and
/// removes a probe file, which (unlike access(2)) also holds for root and read-only mounts.
func checkWritableDirectory(_ dir: String, option: String = "--out") throws {
    do {
        try makeDirectories(dir)
    } catch let f as CLIFailure {
        throw CLIFailure(f.status, f.message + "; nothing was sent", code: f.code)
    }
    var template = Array((dir == "/" ? "/" : dir + "/").utf8CString.dropLast()) + Array(".apixo-probe-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    if fd < 0 {
        throw CLIFailure(ExitStatus.localIO, "cannot write to \(option) \(dir): \(errnoText()); nothing was sent", code: .io)
    }
    close(fd)
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
}

/// A directory as the user typed it, less trailing slashes ("out/" -> "out", "/" stays).
func trimmedDirectory(_ dir: String) -> String {
    var d = dir
    while d.count > 1, d.hasSuffix("/") { d.removeLast() }
    return d
}

func syncDirectory(of path: String) {
    var dir = "."
    if let slash = path.lastIndex(of: "/") { dir = slash == path.startIndex ? "/" : String(path[..<slash]) }
    let d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if d >= 0 {
        fsync(d)
        close(d)
    }
}

/// An append-only file of JSON lines, each written whole and fdatasync'd before `append`
/// returns. At open, a torn last line (a crash mid-write) is cut off.
final class JSONLinesFile {
    let path: String
    private var fd: Int32 = -1

    init(path: String) {
        self.path = path
    }

    /// The complete lines that parse as JSON objects, in order.
    func load() throws -> [JSONObject] {
        guard let data = try readWholeFile(path) else { return [] }
        var out: [JSONObject] = []
        var start = 0
        while start < data.count {
            guard let nl = data[start...].firstIndex(of: 10) else {
                // No newline: a torn last line. Cut it so the next append starts clean.
                if truncate(path, off_t(start)) != 0 {
                    throw CLIFailure(ExitStatus.localIO, "cannot repair \(path): \(errnoText())", code: .io)
                }
                break
            }
            let line = Array(data[start..<nl])
            start = nl + 1
            if let o = (try? JSON.parse(line))?.objectValue { out.append(o) }
        }
        return out
    }

    /// Appends one line durably.
    func append(_ o: JSONObject) throws {
        if fd < 0 {
            fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 { throw CLIFailure(ExitStatus.localIO, "cannot open \(path): \(errnoText())", code: .io) }
            syncDirectory(of: path)
        }
        let bytes = Array((JSON.object(o).serialized() + "\n").utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIFailure(ExitStatus.localIO, "cannot write \(path): \(errnoText())", code: .io)
            }
            off += n
        }
        if fdatasync(fd) != 0 { throw CLIFailure(ExitStatus.localIO, "cannot sync \(path): \(errnoText())", code: .io) }
    }

    /// Replaces the file with `lines` (temporary file, fsync, rename); removes it when empty.
    func rewrite(_ lines: [JSONObject]) throws {
        closeFile()
        if lines.isEmpty {
            unlink(path)
            syncDirectory(of: path)
            return
        }
        let tmp = path + ".tmp"
        let t = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if t < 0 { throw CLIFailure(ExitStatus.localIO, "cannot write \(tmp): \(errnoText())", code: .io) }
        var text = ""
        for o in lines { text += JSON.object(o).serialized() + "\n" }
        writeFD(t, text)
        let ok = fsync(t) == 0
        close(t)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw CLIFailure(ExitStatus.localIO, "cannot replace \(path): \(errnoText())", code: .io)
        }
        syncDirectory(of: path)
    }

    func closeFile() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    deinit { closeFile() }
}
