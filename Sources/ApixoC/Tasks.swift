import Apixo
import Glibc

private func box(_ t: OpaquePointer?) -> TaskBox? { object(t, as: TaskBox.self) }

@_cdecl("apixo_task_id")
public func apixo_task_id(_ t: OpaquePointer?) -> UnsafePointer<CChar>? {
    box(t).map { UnsafePointer($0.id) }
}

@_cdecl("apixo_task_model")
public func apixo_task_model(_ t: OpaquePointer?) -> UnsafePointer<CChar>? { box(t)?.model.map { UnsafePointer($0) } }

@_cdecl("apixo_task_state")
public func apixo_task_state(_ t: OpaquePointer?) -> Int32 { box(t)?.snapshot.state.rawValue ?? 0 }

@_cdecl("apixo_task_result_count")
public func apixo_task_result_count(_ t: OpaquePointer?) -> Int { box(t)?.urls.count ?? 0 }

@_cdecl("apixo_task_result_url")
public func apixo_task_result_url(_ t: OpaquePointer?, _ i: Int) -> UnsafePointer<CChar>? {
    guard let b = box(t), i >= 0, i < b.urls.count else { return nil }
    return UnsafePointer(b.urls[i])
}

@_cdecl("apixo_task_fail_code")
public func apixo_task_fail_code(_ t: OpaquePointer?) -> UnsafePointer<CChar>? { box(t)?.failCode.map { UnsafePointer($0) } }

@_cdecl("apixo_task_fail_message")
public func apixo_task_fail_message(_ t: OpaquePointer?) -> UnsafePointer<CChar>? {
    box(t)?.failMessage.map { UnsafePointer($0) }
}

@_cdecl("apixo_task_create_time_ms")
public func apixo_task_create_time_ms(_ t: OpaquePointer?) -> Int64 { box(t)?.snapshot.createTimeMs ?? 0 }

@_cdecl("apixo_task_complete_time_ms")
public func apixo_task_complete_time_ms(_ t: OpaquePointer?) -> Int64 { box(t)?.snapshot.completeTimeMs ?? 0 }

@_cdecl("apixo_task_cost_time_ms")
public func apixo_task_cost_time_ms(_ t: OpaquePointer?) -> Int64 { box(t)?.snapshot.costTimeMs ?? 0 }

@_cdecl("apixo_task_json")
public func apixo_task_json(_ t: OpaquePointer?) -> UnsafePointer<CChar>? { box(t).map { UnsafePointer($0.json) } }

@_cdecl("apixo_task_tag")
public func apixo_task_tag(_ t: OpaquePointer?) -> UnsafePointer<CChar>? { box(t)?.tag.map { UnsafePointer($0) } }

/// Snapshots are immutable, so a copy is the same box with one more reference.
@_cdecl("apixo_task_copy")
public func apixo_task_copy(_ t: OpaquePointer?) -> OpaquePointer? {
    guard let b = box(t) else { return nil }
    return retained(b)
}

@_cdecl("apixo_task_free")
public func apixo_task_free(_ t: OpaquePointer?) { release(t, as: TaskBox.self) }
