// libFuzzer target: a webhook delivery's body, through the path apixo_webhook_ingest takes
// (Client.ingestWebhook: size check, JSON parse, envelope or bare status object,
// TaskSnapshot.parse, the engine's lookup) and the snapshot's fields and JSON afterwards.
@testable import Apixo
import Glibc

/// One client for the whole run (its threads are started once, not per input).
private let client: Client = {
    var o = ClientOptions()
    o.apiKey = "sk-fuzz"
    o.baseURL = "http://127.0.0.1:9/api/v1"  // never contacted: ingest sends nothing
    return try! Client(options: o)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebhook(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    let direct = try? Client.parseWebhook(body)
    do {
        let snap = try client.ingestWebhook(body)
        touch(snap)
    } catch let e as ApixoError {
        // The two paths agree: a body parses exactly when ingest gets past parsing.
        if (e.code == .notFound) != (direct != nil) { fatalError("ingest and parse disagree: \(e)") }
        if let t = e.task { touch(t) }
        precondition(!e.message.isEmpty && !e.message.utf8.contains(where: { $0 < 0x20 }), "message must be one line: \(e.message)")
    } catch {
        fatalError("unexpected error type \(error)")
    }
    return 0
}

private func touch(_ s: TaskSnapshot) {
    precondition(!s.id.isEmpty)
    // The serialised status object parses back.
    guard let again = try? JSON.parse(Array(s.json.utf8)) else { fatalError("snapshot json does not parse: \(s.json)") }
    _ = try? TaskSnapshot.parse(data: again, model: s.model, tag: s.tag)
    _ = s.with(model: "m", tag: "t")
    for u in s.resultURLs { _ = Client.fileExtension(url: u, contentType: nil) }
}
