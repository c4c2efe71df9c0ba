// libFuzzer target: a journal file, opened as Client(journal:) opens it (Journal.init: lock,
// load, compaction), its leftover entries read back as resume reads them (snapshot JSON,
// request bodies), then one more record appended and the file closed.
// Input: when it starts with '!', the rest is the file as is (checksums included, so
// mutations mostly test the checksum); otherwise each line is a record's JSON and the
// harness writes it with its correct CRC-32 (so mutations reach the record decoder).
@testable import Apixo
import Glibc

private let path: String = {
    let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(dir)/apixo-fuzz-journal-\(getpid())"
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJournal(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    var file: [UInt8] = []
    if input.first == UInt8(ascii: "!") {
        file = Array(input.dropFirst())
    } else {
        for line in input.split(separator: 10, omittingEmptySubsequences: false) {
            var hex = String(crc32(Array(line)), radix: 16)
            while hex.utf8.count < 8 { hex = "0" + hex }
            file += Array(hex.utf8) + [32] + line + [10]
        }
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path)") }
    _ = file.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    defer {
        unlink(path)
        unlink(path + ".compact")
    }
    let j: Journal
    do { j = try Journal(path: path) } catch let e as ApixoError {
        precondition(e.code == .io && !e.message.utf8.contains(where: { $0 < 0x20 }), "open: \(e)")
        return 0
    } catch {
        fatalError("unexpected error type \(error)")
    }
    for e in j.takeLeftover() {
        if let s = e.snapshotJSON, let json = try? JSON.parse(s) {
            _ = try? TaskSnapshot.parse(data: json, model: e.model, tag: e.tag)
        }
        if let b = e.body, let json = try? JSON.parse(b) {
            _ = try? Request.fromBody(model: e.model, body: json, tag: e.tag)
        }
        _ = e.terminalCode?.name
    }
    if let seq = try? j.intent(model: "seedream-5-0", body: #"{"input":{"prompt":"x"}}"#, tag: nil) {
        j.delivered(seq: seq)
    }
    j.close()
    return 0
}
