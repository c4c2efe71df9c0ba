/// A generation request: the model, routing options and the model's `input`.
///
/// Setters validate at once for models whose rules the library knows (seedream-5-0,
/// seedream-4-5) and throw `ApixoError(.invalidArgument)` naming the field and its allowed
/// values, leaving the request unchanged. Other models get structural checks only.
public struct Request: Equatable, Sendable {
    public static let defaultModel = "seedream-5-0"
    public static let requestTypes = ["async", "callback"]
    public static let providers = ["auto", "value", "official"]

    public let model: String
    public private(set) var requestType = "async"
    public private(set) var callbackURL: String?
    public private(set) var provider: String?
    public private(set) var input = JSONObject()
    /// The caller's own id for this request, kept in the journal; never sent.
    public private(set) var tag: String?

    var rules: ModelRules? { ModelRules.forModel(model) }

    /// - Throws: `.invalidArgument` when the model name is empty or not a path-safe segment.
    public init(model: String? = nil) throws {
        self.model = try Request.checkModel(model)
    }

    /// The model name to use (nil: the default), if it can be a URL path segment.
    static func checkModel(_ model: String?) throws -> String {
        let m = model ?? Request.defaultModel
        guard isSafeSegment(m) else {
            throw ApixoError(.invalidArgument, "model must be a non-empty name of letters, digits, '.', '_' or '-'")
        }
        return m
    }

    static func isSafeSegment(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 128 && s.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
                || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
        }
    }

    /// An absolute http or https URL with a host and no spaces or control characters.
    static func isHTTPURL(_ s: String) -> Bool {
        let lower = s.lowercased()
        for scheme in ["http://", "https://"] where lower.hasPrefix(scheme) {
            let rest = s.utf8.dropFirst(scheme.utf8.count)
            guard let first = rest.first, first != UInt8(ascii: "/"), first != UInt8(ascii: "?"),
                  first != UInt8(ascii: "#"), first != UInt8(ascii: ":") else { return false }
            return !s.utf8.contains(where: { $0 <= 32 || $0 == 127 })
        }
        return false
    }

    /// Sets one input field, validating it against the model's rules.
    public mutating func setInput(_ field: String, _ value: JSON) throws {
        guard !field.isEmpty else { throw ApixoError(.invalidArgument, "input field name must not be empty") }
        if let rules, let problem = rules.check(field: field, value: value) {
            throw ApixoError(.invalidArgument, problem)
        }
        if rules == nil, field == "prompt", (value.stringValue ?? "").isEmpty {
            throw ApixoError(.invalidArgument, "input.prompt must be a non-empty string")
        }
        input[field] = value
    }

    /// Removes one input field.
    public mutating func removeInput(_ field: String) {
        input[field] = nil
    }

    public mutating func setPrompt(_ prompt: String) throws { try setInput("prompt", .string(prompt)) }
    public mutating func setMode(_ mode: String) throws { try setInput("mode", .string(mode)) }
    public mutating func setMaxImages(_ n: Int) throws { try setInput("max_images", .int(Int64(n))) }
    public mutating func setResolution(_ r: String) throws { try setInput("resolution", .string(r)) }
    public mutating func setAspectRatio(_ r: String) throws { try setInput("aspect_ratio", .string(r)) }
    public mutating func setSequential(_ m: String) throws { try setInput("sequential_image_generation", .string(m)) }
    public mutating func setWebSearch(_ on: Bool) throws { try setInput("web_search", .bool(on)) }
    public mutating func setOutputFormat(_ f: String) throws { try setInput("output_format", .string(f)) }
    public mutating func setPromptOptimizeMode(_ m: String) throws { try setInput("prompt_optimize_mode", .string(m)) }

    /// Appends one reference image URL (http or https).
    public mutating func addImageURL(_ url: String) throws {
        guard Request.isHTTPURL(url) else {
            throw ApixoError(.invalidArgument, "input.image_urls must hold http or https URLs")
        }
        var urls = input["image_urls"]?.arrayValue ?? []
        urls.append(.string(url))
        try setInput("image_urls", .array(urls))
    }

    /// Sets the routing strategy: auto, value or official.
    public mutating func setProvider(_ p: String) throws {
        guard Request.providers.contains(p) else {
            throw ApixoError(.invalidArgument, "provider must be one of \(ModelRules.list(Request.providers))")
        }
        provider = p
    }

    /// Sets the webhook URL (http or https); request_type becomes "callback".
    public mutating func setCallbackURL(_ url: String) throws {
        guard Request.isHTTPURL(url) else {
            throw ApixoError(.invalidArgument, "callback_url must be an http or https URL")
        }
        callbackURL = url
        requestType = "callback"
    }

    /// Removes the webhook URL; request_type becomes "async" again.
    public mutating func clearCallbackURL() {
        callbackURL = nil
        requestType = "async"
    }

    /// Sets the caller's tag (kept in the journal, never sent); nil removes it.
    public mutating func setTag(_ t: String?) throws {
        if let t, t.isEmpty || t.utf8.contains(0) {
            throw ApixoError(.invalidArgument, "tag must be non-empty text without NUL")
        }
        tag = t
    }

    /// The cross-field checks: what must hold before the request can be sent.
    public func validate() throws {
        if requestType == "callback", callbackURL == nil {
            throw ApixoError(.invalidArgument, "callback_url is required when request_type is callback")
        }
        guard let rules else {
            if input.isEmpty { throw ApixoError(.invalidArgument, "input must not be empty") }
            return
        }
        guard input["prompt"] != nil else {
            throw ApixoError(.invalidArgument, "input.prompt is required (1 to \(rules.promptMaxCharacters) characters)")
        }
        guard input["max_images"] != nil else {
            throw ApixoError(.invalidArgument,
                             "input.max_images is required (an integer from \(rules.maxImages.lowerBound) to \(rules.maxImages.upperBound))")
        }
        let mode = input["mode"]?.stringValue ?? "text-to-image"
        let urls = input["image_urls"]?.arrayValue ?? []
        if mode == "image-to-image", urls.isEmpty {
            throw ApixoError(.invalidArgument,
                             "input.image_urls is required for image-to-image (1 to \(rules.maxImageURLs) URLs)")
        }
        for (k, v) in input.pairs {
            if let problem = rules.check(field: k, value: v) { throw ApixoError(.invalidArgument, problem) }
        }
    }

    /// The POST body as a JSON value.
    public var body: JSON {
        var o = JSONObject()
        o["request_type"] = .string(requestType)
        if let callbackURL { o["callback_url"] = .string(callbackURL) }
        if let provider { o["provider"] = .string(provider) }
        o["input"] = .object(input)
        return .object(o)
    }

    /// Exactly the body that would be sent.
    public func toJSON() -> String { body.serialized() }

    /// The resolution for poll planning ("2K" when unset).
    var resolutionKey: String {
        input["resolution"]?.stringValue ?? "2K"
    }

    /// Rebuilds a request from a body produced by `toJSON` (the journal keeps bodies).
    static func fromBody(model: String, body: JSON, tag: String?) throws -> Request {
        var r = try Request(model: model)
        guard let o = body.objectValue, let input = o["input"]?.objectValue else {
            throw ApixoError(.protocol, "journalled request body has no input object")
        }
        r.input = input
        if let t = o["request_type"]?.stringValue { r.requestType = t }
        r.callbackURL = o["callback_url"]?.stringValue
        r.provider = o["provider"]?.stringValue
        r.tag = tag
        return r
    }
}
