/// The state of a task, as `apixo_state`.
public enum TaskState: Int32, Sendable {
    case pending = 0, processing = 1, success = 2, failed = 3

    public var name: String {
        switch self {
        case .pending: return "pending"
        case .processing: return "processing"
        case .success: return "success"
        case .failed: return "failed"
        }
    }

    public init?(name: String) {
        switch name {
        case "pending": self = .pending
        case "processing": self = .processing
        case "success": self = .success
        case "failed": self = .failed
        default: return nil
        }
    }

    public var isTerminal: Bool { self == .success || self == .failed }
}

/// An immutable snapshot of one task's status, as the API reported it.
public final class TaskSnapshot: Sendable {
    /// The task id; "" for a journalled submit whose answer never arrived.
    public let id: String
    /// The model, when known (nil for a webhook about a task this client does not track).
    public let model: String?
    public let state: TaskState
    public let resultURLs: [String]
    public let failCode: String?
    public let failMessage: String?
    public let createTimeMs: Int64
    public let completeTimeMs: Int64
    public let costTimeMs: Int64
    /// The status `data` object as received, serialised.
    public let json: String
    /// The caller's tag from the request, when the task came from this client or its journal.
    public let tag: String?

    init(id: String, model: String?, state: TaskState, resultURLs: [String] = [], failCode: String? = nil,
         failMessage: String? = nil, createTimeMs: Int64 = 0, completeTimeMs: Int64 = 0, costTimeMs: Int64 = 0,
         json: String = "{}", tag: String? = nil) {
        self.id = id
        self.model = model
        self.state = state
        self.resultURLs = resultURLs
        self.failCode = failCode
        self.failMessage = failMessage
        self.createTimeMs = createTimeMs
        self.completeTimeMs = completeTimeMs
        self.costTimeMs = costTimeMs
        self.json = json
        self.tag = tag
    }

    /// What is known of a task no status was received for: state pending, the id ("" when
    /// the submit was never answered), model and tag.
    static func standIn(id: String, model: String?, tag: String?) -> TaskSnapshot {
        TaskSnapshot(id: id, model: model, state: .pending, tag: tag)
    }

    /// The same snapshot with model and tag filled in.
    func with(model: String?, tag: String?) -> TaskSnapshot {
        TaskSnapshot(id: id, model: model ?? self.model, state: state, resultURLs: resultURLs, failCode: failCode,
                     failMessage: failMessage, createTimeMs: createTimeMs, completeTimeMs: completeTimeMs,
                     costTimeMs: costTimeMs, json: json, tag: tag ?? self.tag)
    }

    /// Parses a status `data` object.
    /// - Throws: `.protocol` when a documented field is missing or of the wrong type.
    static func parse(data: JSON, model: String?, tag: String?) throws -> TaskSnapshot {
        guard let o = data.objectValue else { throw ApixoError(.protocol, "status data is not an object") }
        guard let id = o["taskId"]?.stringValue, !id.isEmpty else {
            throw ApixoError(.protocol, "status data has no taskId string")
        }
        guard let stateName = o["state"]?.stringValue else {
            throw ApixoError(.protocol, "status data has no state string")
        }
        guard let state = TaskState(name: stateName) else {
            throw ApixoError(.protocol, "unknown task state '\(stateName.prefix(40))'")
        }
        // The time fields only inform: a value out of range (negative, past year 9999, not
        // finite) is taken as absent (0), never converted with a trap.
        func millis(_ key: String) throws -> Int64 {
            guard let v = o[key], v != .null else { return 0 }
            switch v {
            case .int(let i): return Bounded.millis(i) ?? 0
            case .double(let d): return Bounded.millis(d) ?? 0
            case .string(let s):
                if let i = Int64(s) { return Bounded.millis(i) ?? 0 }
                if let d = Double(s) { return Bounded.millis(d) ?? 0 }
            default: break
            }
            throw ApixoError(.protocol, "status field \(key) is not a number")
        }
        var urls: [String] = []
        if state == .success {
            guard let rj = o["resultJson"], rj != .null else {
                throw ApixoError(.protocol, "successful task has no resultJson")
            }
            let result: JSON
            if let text = rj.stringValue {
                do { result = try JSON.parse(text) } catch let e as JSONParseError {
                    throw ApixoError(.protocol, "resultJson is not JSON: \(e.message)")
                }
            } else {
                result = rj  // tolerate an object where the seed page documents a string
            }
            guard let list = result["resultUrls"]?.arrayValue else {
                throw ApixoError(.protocol, "resultJson has no resultUrls array")
            }
            for u in list {
                guard let s = u.stringValue, !s.isEmpty else { throw ApixoError(.protocol, "resultUrls holds a non-string") }
                urls.append(s)
            }
        }
        var failCode: String?
        var failMessage: String?
        if state == .failed {
            failCode = Sanitizer.redact(o["failCode"]?.stringValue ?? o["failCode"].map { $0.serialized() } ?? "UNKNOWN")
            failMessage = Sanitizer.redact(o["failMsg"]?.stringValue ?? "")
        }
        return TaskSnapshot(id: id, model: model, state: state, resultURLs: urls, failCode: failCode,
                            failMessage: failMessage, createTimeMs: try millis("createTime"),
                            completeTimeMs: state.isTerminal ? try millis("completeTime") : 0,
                            costTimeMs: state.isTerminal ? try millis("costTime") : 0,
                            json: Sanitizer.redact(data.serialized()), tag: tag)
    }
}
