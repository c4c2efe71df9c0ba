// The queue delivery mode (header section "Events: completions on the host's own thread").
import Apixo
import Glibc

private let emptyMessage: UnsafeMutablePointer<CChar> = strdup("")!

/// An apixo_event: a completion (code, task, user data, message) or a log line (level, message).
final class EventBox: CHandle {
    static let cName = "apixo_event"
    let kind: Int32
    let code: Int32
    let task: TaskBox?
    let userData: UnsafeMutableRawPointer?
    let level: Int32
    let message: UnsafeMutablePointer<CChar>

    init(_ e: Event) {
        let text: String
        switch e {
        case .completion(let o, let ud):
            kind = 0
            code = o.code.rawValue
            task = o.task.map { TaskBox($0) }
            userData = UnsafeMutableRawPointer(bitPattern: ud)
            level = -1
            text = o.message
        case .log(let l, let m):
            kind = 1
            code = ApixoCode.ok.rawValue
            task = nil
            userData = nil
            level = l.rawValue
            text = m
        }
        message = strdup(text) ?? emptyMessage
    }

    deinit {
        if message != emptyMessage { free(message) }
    }
}

private func event(_ e: OpaquePointer?) -> EventBox? { object(e, as: EventBox.self) }

@_cdecl("apixo_client_event_fd")
public func apixo_client_event_fd(_ c: OpaquePointer?, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded {
        let cl = try client(c)
        guard let out else { throw invalid("fd_out must not be NULL") }
        guard let fd = cl.eventFD else { throw invalid("event_fd needs the queue delivery mode (APIXO_DELIVERY_QUEUE)") }
        out.pointee = fd
    }
}

@_cdecl("apixo_dispatch")
public func apixo_dispatch(_ c: OpaquePointer?, _ maxEvents: UInt, _ timeoutMs: Int,
                           _ ranOut: UnsafeMutablePointer<Int>?) -> Int32 {
    guarded {
        ranOut?.pointee = 0
        let cl = try client(c)
        let n = try cl.dispatch(max: Int(clamping: maxEvents), timeoutMs: timeoutMs)
        ranOut?.pointee = n
    }
}

@_cdecl("apixo_next_event")
public func apixo_next_event(_ c: OpaquePointer?, _ timeoutMs: Int, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded {
        let cl = try client(c)
        guard let out else { throw invalid("out must not be NULL") }
        out.pointee = nil
        out.pointee = retained(EventBox(try cl.nextEvent(timeoutMs: timeoutMs)))
    }
}

@_cdecl("apixo_event_kind_of")
public func apixo_event_kind_of(_ e: OpaquePointer?) -> Int32 { event(e)?.kind ?? 0 }

@_cdecl("apixo_event_code")
public func apixo_event_code(_ e: OpaquePointer?) -> Int32 { event(e)?.code ?? ApixoCode.invalidArgument.rawValue }

@_cdecl("apixo_event_task")
public func apixo_event_task(_ e: OpaquePointer?) -> OpaquePointer? {
    event(e)?.task.map { OpaquePointer(Unmanaged.passUnretained($0).toOpaque()) }
}

@_cdecl("apixo_event_user_data")
public func apixo_event_user_data(_ e: OpaquePointer?) -> UnsafeMutableRawPointer? { event(e)?.userData }

@_cdecl("apixo_event_message")
public func apixo_event_message(_ e: OpaquePointer?) -> UnsafePointer<CChar> {
    UnsafePointer(event(e)?.message ?? emptyMessage)
}

@_cdecl("apixo_event_log_level")
public func apixo_event_log_level(_ e: OpaquePointer?) -> Int32 { event(e)?.level ?? -1 }

@_cdecl("apixo_event_free")
public func apixo_event_free(_ e: OpaquePointer?) { release(e, as: EventBox.self) }

@_cdecl("apixo_client_log_dropped")
public func apixo_client_log_dropped(_ c: OpaquePointer?) -> UInt64 {
    object(c, as: ClientBox.self)?.client.logDropped ?? 0
}
