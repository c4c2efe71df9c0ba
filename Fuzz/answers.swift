// libFuzzer target: an API answer to a status request or a submit, as the engine sees it:
// the header lines curl hands over (HTTPResult.addHeaderLine, Retry-After), the status and
// the body (WireProtocol.interpret), then TaskSnapshot.parse (status) or the taskId check
// (submit). Input: "STATUS FLAGS\n" (decimal numbers), header lines, an empty line, the body.
// FLAGS bit 0: a submit (else a status request); bit 1: curl failed (timeout); bit 2: body
// over the size limit; bit 3: aborted by the client.
@testable import Apixo
import CCurl

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAnswers(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let nl = bytes.firstIndex(of: 10) else { return 0 }
    let first = String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<nl]), as: UTF8.self).split(separator: " ")
    var r = HTTPResult()
    r.status = first.first.flatMap { Int($0) } ?? 0
    let flags = first.count > 1 ? Int(first[1]) ?? 0 : 0
    if flags & 2 != 0 {
        r.curlCode = CURLE_OPERATION_TIMEDOUT
        r.curlMessage = "Timeout was reached"
    }
    r.bodyTooLarge = flags & 4 != 0
    r.aborted = flags & 8 != 0
    // Header lines up to the first empty one, each handed over with its CRLF as curl does.
    var i = nl + 1
    while i < size {
        let end = bytes[i...].firstIndex(of: 10) ?? size
        var line = Array(bytes[i..<end])
        if line.last == 13 { line.removeLast() }
        i = end + 1
        if line.isEmpty { break }
        line += [13, 10]
        line.withUnsafeBytes { r.addHeaderLine($0) }
    }
    if i < size { r.body = Array(bytes[i...]) }
    r.bodyBytes = r.body.count
    // Seconds, never negative or NaN; +infinity (over 308 digits) is "longer than any cap",
    // which the client refuses to wait for (max_retry_after_ms).
    if let ra = r.retryAfter { precondition(ra >= 0 && !ra.isNaN, "retry-after \(ra)") }
    _ = r.certainlyNotSent
    let submit = flags & 1 != 0
    let what = submit ? "generateTask/seedream-5-0" : "statusTask/seedream-5-0"
    switch WireProtocol.interpret(r, what: what) {
    case .failure(let e):
        oneLine(e.message)
    case .success(let data):
        if submit {
            if let id = data["taskId"]?.stringValue { _ = try? Client.checkTaskId(id) }
        } else {
            do {
                let s = try TaskSnapshot.parse(data: data, model: "seedream-5-0", tag: nil)
                _ = try? JSON.parse(Array(s.json.utf8))
            } catch let e as ApixoError {
                oneLine(e.message)
            } catch {
                fatalError("unexpected error type \(error)")
            }
        }
    }
    return 0
}

private func oneLine(_ m: String) {
    precondition(!m.isEmpty && !m.utf8.contains(where: { $0 < 0x20 }), "message must be one line: \(m)")
}
