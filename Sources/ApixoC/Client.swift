import Apixo
import Glibc

/// The client of a handle; `.closed` at once in a forked child (see "Fork" in the header).
func client(_ c: OpaquePointer?) throws -> Client {
    let cl = try handle(c, "c", as: ClientBox.self).client
    if cl.inForkedChild { throw ApixoError(.closed, Client.forkedMessage) }
    return cl
}

private func request(_ r: OpaquePointer?) throws -> Request {
    try handle(r, "req", as: RequestBox.self).request
}

private func model(_ m: UnsafePointer<CChar>?) -> String? { m.map { String(cString: $0) } }

@_cdecl("apixo_client_new")
public func apixo_client_new(_ o: OpaquePointer?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        guard let out else { throw invalid("out must not be NULL") }
        out.pointee = nil
        let opts = try o.map { try handle($0, "opts", as: OptionsBox.self).options }
        out.pointee = retained(ClientBox(try Client(options: opts ?? ClientOptions())))
    }
}

@_cdecl("apixo_client_free")
public func apixo_client_free(_ c: OpaquePointer?) {
    guard let c else { return }
    guard let live = object(c, as: ClientBox.self) else { return refuseFree(ClientBox.self) }
    // In a forked child the parent's client is left alone and leaked (see the header).
    if live.client.inForkedChild { return }
    let box = Unmanaged<ClientBox>.fromOpaque(UnsafeRawPointer(c)).takeRetainedValue()
    box.client.close()
}

@_cdecl("apixo_client_stats")
public func apixo_client_stats(_ c: OpaquePointer?, _ queued: UnsafeMutablePointer<Int64>?,
                               _ slots: UnsafeMutablePointer<Int64>?, _ tracked: UnsafeMutablePointer<Int64>?,
                               _ inWindow: UnsafeMutablePointer<Int64>?, _ pending: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded {
        let cl = try client(c)
        let s = cl.stats()
        queued?.pointee = Int64(s.queuedSubmits)
        slots?.pointee = Int64(s.slotsInUse)
        tracked?.pointee = Int64(s.trackedTasks)
        inWindow?.pointee = Int64(s.requestsInWindow)
        pending?.pointee = Int64(s.pendingCallbacks)
    }
}

// MARK: blocking calls

@_cdecl("apixo_submit")
public func apixo_submit(_ c: OpaquePointer?, _ r: OpaquePointer?,
                         _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let cl = try client(c)
        let req = try request(r)
        guard let out else { throw invalid("task_id_out must not be NULL") }
        out.pointee = try ownedCString(try cl.submit(req))
    }
}

@_cdecl("apixo_submit_timeout")
public func apixo_submit_timeout(_ c: OpaquePointer?, _ r: OpaquePointer?, _ queueTimeoutMs: Int,
                                 _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let cl = try client(c)
        let req = try request(r)
        guard let out else { throw invalid("task_id_out must not be NULL") }
        out.pointee = try ownedCString(try cl.submit(req, queueTimeoutMs: queueTimeoutMs))
    }
}

@_cdecl("apixo_get_status")
public func apixo_get_status(_ c: OpaquePointer?, _ m: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?,
                             _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let cl = try client(c)
        let taskId = try string(id, "task_id")
        guard let out else { throw invalid("out must not be NULL") }
        store(try cl.status(model: model(m), taskId: taskId), out)
    }
}

/// Runs a wait-like call: *out gets the task on success, on a failed task and on a timeout.
private func waitLike(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ body: () throws -> TaskSnapshot) -> Int32 {
    guarded {
        guard let out else { throw invalid("out must not be NULL") }
        out.pointee = nil
        do {
            store(try body(), out)
        } catch let e as ApixoError {
            if e.code == .taskFailed || e.code == .timeout { store(e.task, out) }
            throw e
        }
    }
}

@_cdecl("apixo_wait")
public func apixo_wait(_ c: OpaquePointer?, _ m: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?,
                       _ timeoutMs: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    waitLike(out) {
        let cl = try client(c)
        return try cl.wait(model: model(m), taskId: try string(id, "task_id"), timeoutMs: timeoutMs)
    }
}

@_cdecl("apixo_generate")
public func apixo_generate(_ c: OpaquePointer?, _ r: OpaquePointer?, _ timeoutMs: Int,
                           _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    waitLike(out) {
        let cl = try client(c)
        return try cl.generate(try request(r), timeoutMs: timeoutMs)
    }
}

// MARK: callbacks

@_cdecl("apixo_submit_async")
public func apixo_submit_async(_ c: OpaquePointer?, _ r: OpaquePointer?, _ cb: CTaskCallback?,
                               _ ud: UnsafeMutableRawPointer?) -> Int32 {
    guarded {
        let cl = try client(c)
        let req = try request(r)
        try cl.submitAsync(req, userData: UInt(bitPattern: ud), callback: cb.map { wrap($0, ud) })
    }
}

@_cdecl("apixo_watch")
public func apixo_watch(_ c: OpaquePointer?, _ m: UnsafePointer<CChar>?, _ id: UnsafePointer<CChar>?,
                        _ cb: CTaskCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    guarded {
        let cl = try client(c)
        let taskId = try string(id, "task_id")
        try cl.watch(model: model(m), taskId: taskId, userData: UInt(bitPattern: ud), callback: cb.map { wrap($0, ud) })
    }
}

@_cdecl("apixo_cancel")
public func apixo_cancel(_ c: OpaquePointer?, _ id: UnsafePointer<CChar>?) -> Int32 {
    guarded { try client(c).cancel(taskId: try string(id, "task_id")) }
}

@_cdecl("apixo_drain")
public func apixo_drain(_ c: OpaquePointer?, _ timeoutMs: Int) -> Int32 {
    guarded { try client(c).drain(timeoutMs: timeoutMs) }
}

@_cdecl("apixo_resume")
public func apixo_resume(_ c: OpaquePointer?, _ cb: CTaskCallback?, _ ud: UnsafeMutableRawPointer?) -> Int32 {
    guarded {
        let cl = try client(c)
        try cl.resume(userData: UInt(bitPattern: ud), callback: cb.map { wrap($0, ud) })
    }
}

// MARK: webhooks

@_cdecl("apixo_webhook_ingest")
public func apixo_webhook_ingest(_ c: OpaquePointer?, _ body: UnsafePointer<CChar>?, _ len: Int,
                                 _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let cl = try client(c)
        guard let body else { throw invalid("body must not be NULL") }
        let bytes = Array(UnsafeRawBufferPointer(start: body, count: max(0, len)))
        do {
            store(try cl.ingestWebhook(bytes), out)
        } catch let e as ApixoError {
            if e.code == .notFound { store(e.task, out) }
            throw e
        }
    }
}

// MARK: downloads

@_cdecl("apixo_download")
public func apixo_download(_ c: OpaquePointer?, _ url: UnsafePointer<CChar>?, _ path: UnsafePointer<CChar>?) -> Int32 {
    guarded {
        let cl = try client(c)
        let u = try string(url, "url")
        let p = try string(path, "path")
        guard !p.isEmpty else { throw invalid("path must not be empty") }
        try cl.download(url: u, to: p)
    }
}

@_cdecl("apixo_download_results")
public func apixo_download_results(_ c: OpaquePointer?, _ t: OpaquePointer?, _ dir: UnsafePointer<CChar>?,
                                   _ pathsOut: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?,
                                   _ countOut: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        let cl = try client(c)
        let task = try handle(t, "t", as: TaskBox.self).snapshot
        let d = try string(dir, "dir")
        guard let pathsOut, let countOut else { throw invalid("paths_out and count_out must not be NULL") }
        guard task.state == .success else { throw invalid("task \(task.id) has not succeeded (state \(task.state.name))") }
        let paths = try cl.downloadResults(task, to: d)
        guard let arr = malloc(max(1, paths.count) * MemoryLayout<UnsafeMutablePointer<CChar>?>.stride)?
            .assumingMemoryBound(to: UnsafeMutablePointer<CChar>?.self) else { throw ApixoError(.noMemory, "out of memory") }
        for (i, p) in paths.enumerated() { arr[i] = strdup(p) }
        pathsOut.pointee = arr
        countOut.pointee = paths.count
    }
}

@_cdecl("apixo_free_paths")
public func apixo_free_paths(_ paths: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ count: Int) {
    guard let paths else { return }
    for i in 0..<max(0, count) { free(paths[i]) }
    free(paths)
}
