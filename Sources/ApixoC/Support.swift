// The thin C ABI over the Swift core: handle boxes, the thread-local last error, and the
// conversions every export shares. One file per header section beside this one.
import Apixo
import Glibc

// MARK: last error (thread-local)

private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { p in free(p) }
    return key
}()

private let emptyCString: UnsafeMutablePointer<CChar> = strdup("")!

/// Records `message` as the calling thread's last error.
func setLastError(_ message: String) {
    let old = pthread_getspecific(lastErrorKey)
    pthread_setspecific(lastErrorKey, strdup(message))
    free(old)
}

func lastErrorPointer() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(lastErrorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return UnsafePointer(emptyCString)
}

/// Runs `body`, turning a thrown error into its code and the thread's last error.
func guarded(_ body: () throws -> Void) -> Int32 {
    do {
        try body()
        return ApixoCode.ok.rawValue
    } catch let e as ApixoError {
        setLastError(e.message)
        return e.code.rawValue
    } catch {
        setLastError("unexpected error: \(error)")
        return ApixoCode.protocol.rawValue
    }
}

func invalid(_ message: String) -> ApixoError { ApixoError(.invalidArgument, message) }

/// A required C string argument.
func string(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String {
    guard let p else { throw invalid("\(name) must not be NULL") }
    return String(cString: p)
}

/// A required handle argument.
func handle<T: CHandle>(_ p: OpaquePointer?, _ name: String, as type: T.Type) throws -> T {
    guard let p else { throw invalid("\(name) must not be NULL") }
    guard let t = object(p, as: type) else { throw invalid("\(name) is not an \(T.cName) (a handle of another type)") }
    return t
}

/// The object behind a handle when it is a `T`; nil for NULL and for a handle of another
/// apixo type (a request passed as a client: a checked cast, not a reinterpretation). A
/// pointer that is no apixo handle at all, or one already freed, cannot be told apart from a
/// live one: that stays undefined behaviour, as the header says.
func object<T: CHandle>(_ p: OpaquePointer?, as: T.Type) -> T? {
    guard let p else { return nil }
    return Unmanaged<AnyObject>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue() as? T
}

func retained<T: AnyObject>(_ obj: T) -> OpaquePointer {
    OpaquePointer(Unmanaged.passRetained(obj).toOpaque())
}

/// A _free function: NULL does nothing, and so does a handle of another type (with the last
/// error set: a free has no code to return).
func release<T: CHandle>(_ p: OpaquePointer?, as type: T.Type) {
    guard let p else { return }
    guard object(p, as: type) != nil else { return refuseFree(type) }
    Unmanaged<T>.fromOpaque(UnsafeRawPointer(p)).release()
}

/// What a _free function given a handle of another type says (it has no code to return).
func refuseFree<T: CHandle>(_: T.Type) {
    setLastError("not an \(T.cName): \(T.cName)_free did nothing")
}

/// A malloc'd copy, freed by the caller with apixo_free.
func ownedCString(_ s: String) throws -> UnsafeMutablePointer<CChar> {
    guard let p = strdup(s) else { throw ApixoError(.noMemory, "out of memory") }
    return p
}

// MARK: handle boxes

/// A class whose instances C holds as `apixo_<name> *`.
protocol CHandle: AnyObject {
    /// The C type's name, for messages.
    static var cName: String { get }
}

final class OptionsBox: CHandle {
    static let cName = "apixo_options"
    var options = ClientOptions()
    var logFn: (@convention(c) (Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void)?
    var logUserData: UnsafeMutableRawPointer?
    var logMinLevel: Int32 = 1
}

final class ClientBox: CHandle {
    static let cName = "apixo_client"
    let client: Client
    init(_ c: Client) { client = c }
}

final class RequestBox: CHandle {
    static let cName = "apixo_request"
    var request: Request
    init(_ r: Request) { request = r }
}

/// A task snapshot with its strings kept as C strings for as long as the box lives.
final class TaskBox: CHandle {
    static let cName = "apixo_task"
    let snapshot: TaskSnapshot
    let id: UnsafeMutablePointer<CChar>
    let model: UnsafeMutablePointer<CChar>?
    let failCode: UnsafeMutablePointer<CChar>?
    let failMessage: UnsafeMutablePointer<CChar>?
    let json: UnsafeMutablePointer<CChar>
    let tag: UnsafeMutablePointer<CChar>?
    let urls: [UnsafeMutablePointer<CChar>]

    init(_ s: TaskSnapshot) {
        snapshot = s
        id = strdup(s.id)
        model = s.model.flatMap { strdup($0) }
        failCode = s.failCode.flatMap { strdup($0) }
        failMessage = s.failMessage.flatMap { strdup($0) }
        json = strdup(s.json)
        tag = s.tag.flatMap { strdup($0) }
        urls = s.resultURLs.map { strdup($0) }
    }

    deinit {
        for p in [id, model, failCode, failMessage, json, tag] { free(p) }
        for u in urls { free(u) }
    }
}

public typealias CTaskCallback = @convention(c) (Int32, OpaquePointer?, UnsafeMutableRawPointer?) -> Void

/// Wraps a C callback: the dispatcher thread's last error carries the message during the call,
/// and the task is borrowed for the call only.
func wrap(_ cb: CTaskCallback, _ userData: UnsafeMutableRawPointer?) -> TaskCallback {
    let ud = UInt(bitPattern: userData)
    return { code, snap, message in
        if code != .ok { setLastError(message) }
        let box = snap.map { TaskBox($0) }
        let p = box.map { OpaquePointer(Unmanaged.passUnretained($0).toOpaque()) }
        withExtendedLifetime(box) {
            cb(code.rawValue, p, UnsafeMutableRawPointer(bitPattern: ud))
        }
    }
}

/// Writes an owned task box to `out` when both exist.
func store(_ snap: TaskSnapshot?, _ out: UnsafeMutablePointer<OpaquePointer?>?) {
    guard let out else { return }
    out.pointee = snap.map { retained(TaskBox($0)) }
}
