import CJansson
import Glibc

/// A JSON value. Objects keep their keys in insertion order, so bodies serialise predictably.
public enum JSON: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object(JSONObject)

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Integers, and doubles that hold a whole number, as Int64.
    public var int64Value: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.2e18: return Int64(d)
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public subscript(key: String) -> JSON? {
        objectValue?[key]
    }
}

/// An insertion-ordered JSON object.
public struct JSONObject: Equatable, Sendable {
    public private(set) var keys: [String] = []
    private var values: [String: JSON] = [:]

    public init() {}

    public init(_ pairs: [(String, JSON)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public subscript(key: String) -> JSON? {
        get { values[key] }
        set {
            if let v = newValue {
                if values.updateValue(v, forKey: key) == nil { keys.append(key) }
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var isEmpty: Bool { keys.isEmpty }
    public var count: Int { keys.count }
    public var pairs: [(String, JSON)] { keys.map { ($0, values[$0]!) } }
}

/// A JSON text that could not be parsed.
public struct JSONParseError: Error, Sendable {
    public let message: String
}

extension JSON {
    /// Parses JSON text (any value at the top level) with jansson.
    public static func parse(_ bytes: [UInt8]) throws -> JSON {
        var err = json_error_t()
        let flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL
        let root: UnsafeMutablePointer<json_t>? = bytes.withUnsafeBufferPointer { buf in
            // jansson wants a non-null pointer even for an empty buffer.
            guard let base = buf.baseAddress else { return nil }
            return json_loadb(UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), buf.count, Int(flags), &err)
        }
        guard let root else {
            if bytes.isEmpty { throw JSONParseError(message: "empty body") }
            let text = withUnsafeBytes(of: &err.text) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            throw JSONParseError(message: "\(text) at line \(err.line), column \(err.column)")
        }
        defer { apixo_json_decref(root) }
        return try convert(root, depth: 0)
    }

    public static func parse(_ text: String) throws -> JSON {
        try parse(Array(text.utf8))
    }

    private static func convert(_ v: UnsafeMutablePointer<json_t>, depth: Int) throws -> JSON {
        if depth > 512 { throw JSONParseError(message: "nesting deeper than 512 levels") }
        switch json_type(rawValue: UInt32(apixo_json_type(v))) {
        case JSON_NULL: return .null
        case JSON_TRUE: return .bool(true)
        case JSON_FALSE: return .bool(false)
        case JSON_INTEGER: return .int(Int64(json_integer_value(v)))
        case JSON_REAL: return .double(json_real_value(v))
        case JSON_STRING:
            let n = json_string_length(v)
            let p = json_string_value(v)!
            let buf = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: n)
            return .string(String(decoding: buf, as: UTF8.self))
        case JSON_ARRAY:
            var out: [JSON] = []
            let n = json_array_size(v)
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try convert(json_array_get(v, i)!, depth: depth + 1)) }
            return .array(out)
        case JSON_OBJECT:
            var obj = JSONObject()
            var it = json_object_iter(v)
            while let cur = it {
                let key = String(cString: json_object_iter_key(cur))
                obj[key] = try convert(json_object_iter_value(cur)!, depth: depth + 1)
                it = json_object_iter_next(v, cur)
            }
            return .object(obj)
        default:
            throw JSONParseError(message: "unknown JSON type")
        }
    }

    /// Builds a jansson value (a new reference).
    func toJansson() -> UnsafeMutablePointer<json_t> {
        switch self {
        case .null: return json_null()
        case .bool(let b): return b ? json_true() : json_false()
        case .int(let i): return json_integer(json_int_t(i))
        case .double(let d): return json_real(d.isFinite ? d : 0)
        case .string(let s):
            let bytes = Array(s.utf8CString)
            return bytes.withUnsafeBufferPointer { c in
                json_stringn_nocheck(c.baseAddress!, c.count - 1)
            }
        case .array(let a):
            let arr = json_array()!
            for e in a { json_array_append_new(arr, e.toJansson()) }
            return arr
        case .object(let o):
            let obj = json_object()!
            for (k, v) in o.pairs { json_object_set_new_nocheck(obj, k, v.toJansson()) }
            return obj
        }
    }

    /// Compact JSON text, keys in insertion order.
    public func serialized() -> String {
        let root = toJansson()
        defer { apixo_json_decref(root) }
        let flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17)
        guard let text = json_dumps(root, Int(flags)) else { return "null" }
        defer { free(text) }
        return String(cString: text)
    }
}

private func JSON_REAL_PRECISION(_ n: Int32) -> Int32 { (n & 0x1F) << 11 }
