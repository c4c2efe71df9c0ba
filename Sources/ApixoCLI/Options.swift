import Apixo
import ArgumentParser
import Glibc

/// The options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("api-key"),
            help: ArgumentHelp("The API key (default: $APIXO_API_KEY). Never printed.", valueName: "KEY"))
    var apiKey: String?

    @Option(name: .customLong("base-url"),
            help: ArgumentHelp("The API base URL (default: $APIXO_BASE_URL, else \(ClientOptions.defaultBaseURL)).",
                               valueName: "URL"))
    var baseURL: String?

    // parsing: .unconditional takes "-5" as the value (then rejected by `validate` with the
    // option's rule) instead of as an unknown option that leaves --rpm without a value.
    @Option(name: .customLong("time-scale"), parsing: .unconditional,
            help: ArgumentHelp("Multiplies the client's time assumptions; match a simulator's --time-scale.", valueName: "F"))
    var timeScale: Double = 1.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Requests per minute the client allows itself (0: no limit).", valueName: "N"))
    var rpm: Int = 60

    @Option(name: .customLong("max-tasks"), parsing: .unconditional,
            help: ArgumentHelp("Concurrent tasks the client allows itself (0: no limit).", valueName: "N"))
    var maxTasks: Int = 10

    @Option(name: .customLong("shared-budget"),
            help: ArgumentHelp("Share the account's budget with every client on this Redis: redis://[:password@]host[:port][/db] or unix:///path (default: $APIXO_SHARED_BUDGET).",
                               valueName: "URL"))
    var sharedBudget: String?

    @Flag(help: "Machine-readable output: one JSON object per result on stdout.")
    var json = false

    @Flag(name: .shortAndLong, help: "No progress output on stderr (errors are still shown).")
    var quiet = false

    @Flag(help: "Log the library's messages to stderr.")
    var verbose = false

    /// The numeric options' rules (checked first thing in `reporting`, so --json gets its
    /// error object).
    func checkNumbers() throws {
        try NumberRule.atLeast(0, "--rpm", rpm)
        try NumberRule.atLeast(0, "--max-tasks", maxTasks)
        try NumberRule.positive("--time-scale", timeScale)
    }

    func console() -> Console { Console(json: json, quiet: quiet) }

    /// The client options these flags describe (the environment fills what they leave unset).
    func clientOptions(journal: String? = nil) throws -> ClientOptions {
        var o = ClientOptions()
        do {
            if let apiKey { try o.setAPIKey(apiKey) }
            if let baseURL { try o.setBaseURL(baseURL) }
            try o.setTimeScale(timeScale)
            try o.setLimits(requestsPerMinute: rpm, maxConcurrentTasks: maxTasks)
            if let sharedBudget { try o.setSharedBudget(url: sharedBudget) }
        } catch let e as ApixoError {
            throw CLIFailure(ExitStatus.badInput, e.message, code: e.code)
        }
        o.journalPath = journal
        if verbose {
            o.logLevel = .debug
            let json = json
            o.logger = { level, message in
                let name = ["debug", "info", "warn", "error"][Int(level.rawValue)]
                if json {
                    let o = JSONObject([("log", .object(JSONObject([("level", .string(name)), ("message", .string(message))])))])
                    writeFD(2, JSON.object(o).serialized() + "\n")
                } else {
                    writeFD(2, "apixo: \(name): \(message)\n")
                }
            }
        }
        return o
    }

    /// A started client. A missing key is an authentication problem (exit 3).
    func makeClient(journal: String? = nil) throws -> Client {
        let opts = try clientOptions(journal: journal)
        do {
            return try Signals.blocked { try Client(options: opts) }
        } catch let e as ApixoError {
            if e.code == .invalidArgument, opts.apiKey == nil, e.message.contains("API key") {
                throw CLIFailure(ExitStatus.auth, "no API key: set APIXO_API_KEY or pass --api-key", code: .unauthorized)
            }
            throw CLIFailure(e)
        }
    }
}

/// The request options of `generate` and `submit`.
struct RequestOptions: ParsableArguments {
    @Option(help: "The model ID.")
    var model: String = Request.defaultModel

    @Option(name: .customLong("max-images"), parsing: .unconditional,
            help: ArgumentHelp("Images to generate (1 to 10).", valueName: "N"))
    var maxImages: Int = 1

    @Option(help: ArgumentHelp("2K or 3K, or an explicit size such as 2048x2048.", valueName: "R"))
    var resolution: String?

    @Option(name: .customLong("aspect-ratio"),
            help: ArgumentHelp("1:1, 2:3, 3:2, 4:3, 3:4, 9:16, 16:9 or 21:9.", valueName: "W:H"))
    var aspectRatio: String?

    @Option(help: ArgumentHelp("Output format: jpeg or png.", valueName: "F"))
    var format: String?

    @Flag(help: "Generate a coherent series of up to --max-images (sequential_image_generation auto).")
    var sequential = false

    @Flag(name: .customLong("web-search"), help: "Let the model search the web for current topics.")
    var webSearch = false

    @Option(name: .customLong("image"),
            help: ArgumentHelp("A reference image URL (repeatable); implies image-to-image.", valueName: "URL"))
    var images: [String] = []

    @Option(help: ArgumentHelp("text-to-image or image-to-image (default: from --image).", valueName: "MODE"))
    var mode: String?

    @Option(help: ArgumentHelp("Routing: auto, value or official.", valueName: "P"))
    var provider: String?

    @Option(name: .customLong("input"),
            help: ArgumentHelp("An extra input field as KEY=JSON (repeatable), e.g. --input 'seed=42'.", valueName: "KEY=JSON"))
    var extra: [String] = []

    func request(prompt: String) throws -> Request {
        var o = JSONObject()
        o["prompt"] = .string(prompt)
        o["model"] = .string(model)
        o["max_images"] = .int(Int64(maxImages))
        if let resolution { o["resolution"] = .string(resolution) }
        if let aspectRatio { o["aspect_ratio"] = .string(aspectRatio) }
        if let format { o["format"] = .string(format) }
        if sequential { o["sequential"] = .bool(true) }
        if webSearch { o["web_search"] = .bool(true) }
        if !images.isEmpty { o["image_urls"] = .array(images.map { .string($0) }) }
        if let mode { o["mode"] = .string(mode) }
        if let provider { o["provider"] = .string(provider) }
        var input = JSONObject()
        for kv in extra {
            guard let eq = kv.firstIndex(of: "="), eq != kv.startIndex else {
                throw CLIFailure(ExitStatus.badInput, "--input takes KEY=JSON, got '\(kv)'")
            }
            let key = String(kv[..<eq])
            let text = String(kv[kv.index(after: eq)...])
            // A value that is not JSON is taken as a string.
            input[key] = (try? JSON.parse(text)) ?? .string(text)
        }
        if !input.isEmpty { o["input"] = .object(input) }
        return try RequestBuilder.build(o)
    }
}

/// The rules of the numeric options, one message each: `--rpm -5` gets "--rpm must be 0 or
/// more" (exit 2). The options take their value with `parsing: .unconditional`, so that "-5"
/// is read as a value, not as an unknown option. (--max-images is checked by the request
/// rules, which name the field and its range.)
enum NumberRule {
    static func fail(_ message: String) -> CLIFailure {
        CLIFailure(ExitStatus.badInput, message, code: .invalidArgument)
    }

    static func atLeast(_ min: Int, _ name: String, _ value: Int) throws {
        if value < min { throw fail("\(name) must be \(min) or more") }
    }

    static func range(_ r: ClosedRange<Int>, _ name: String, _ value: Int) throws {
        if !r.contains(value) { throw fail("\(name) must be from \(r.lowerBound) to \(r.upperBound)") }
    }

    static func positive(_ name: String, _ value: Double?) throws {
        if let value, !(value.isFinite && value > 0) { throw fail("\(name) must be a number greater than 0") }
    }
}

/// Builds requests from the JSON objects of batch lines (and from the flags, via the same path).
enum RequestBuilder {
    /// The keys a line may have: the CLI's own spellings and the documented input fields.
    /// Any other key is an error naming it (a typo such as "max_imgs" must not be sent as an
    /// input field of a paid task); fields the CLI does not know go under "input".
    static let knownKeys = ["model", "provider", "input", "prompt", "max_images", "maxImages", "format", "output_format",
                            "aspect_ratio", "aspectRatio", "sequential", "sequential_image_generation", "web_search",
                            "webSearch", "image", "images", "image_urls", "mode", "resolution", "prompt_optimize_mode"]

    /// Fields of a line that are not `input` fields, or that are spelled differently there.
    static func build(_ o: JSONObject) throws -> Request {
        do {
            for key in o.keys where !knownKeys.contains(key) {
                let hint = closestName(to: key, in: knownKeys).map { " (did you mean '\($0)'?)" } ?? ""
                throw ApixoError(.invalidArgument, "unknown key '\(key)'\(hint); put fields the CLI does not know under \"input\"")
            }
            let model: String?
            if let m = o["model"] {
                guard let s = m.stringValue else { throw ApixoError(.invalidArgument, "model must be a string") }
                model = s
            } else {
                model = nil
            }
            var r = try Request(model: model)
            var sawMaxImages = false
            for (key, value) in o.pairs {
                switch key {
                case "model":
                    continue
                case "provider":
                    guard let s = value.stringValue else { throw ApixoError(.invalidArgument, "provider must be a string") }
                    try r.setProvider(s)
                case "input":
                    guard let inner = value.objectValue else { throw ApixoError(.invalidArgument, "input must be a JSON object") }
                    for (k, v) in inner.pairs {
                        if k == "max_images" { sawMaxImages = true }
                        try r.setInput(k, v)
                    }
                case "prompt":
                    guard let s = value.stringValue else { throw ApixoError(.invalidArgument, "prompt must be a string") }
                    try r.setPrompt(s)
                case "max_images", "maxImages":
                    sawMaxImages = true
                    try r.setInput("max_images", value)
                case "format", "output_format":
                    if let s = value.stringValue?.lowercased(), s == "jpg" {
                        try r.setOutputFormat("jpeg")
                    } else {
                        try r.setInput("output_format", value)
                    }
                case "aspect_ratio", "aspectRatio":
                    try r.setInput("aspect_ratio", value)
                case "sequential", "sequential_image_generation":
                    if let b = value.boolValue {
                        try r.setSequential(b ? "auto" : "disabled")
                    } else {
                        try r.setInput("sequential_image_generation", value)
                    }
                case "web_search", "webSearch":
                    try r.setInput("web_search", value)
                case "image", "images", "image_urls":
                    let list: [JSON]
                    if let s = value.stringValue { list = [.string(s)] } else if let a = value.arrayValue { list = a } else {
                        throw ApixoError(.invalidArgument, "\(key) must be a URL or an array of URLs")
                    }
                    for u in list {
                        guard let s = u.stringValue else { throw ApixoError(.invalidArgument, "\(key) must hold URL strings") }
                        try r.addImageURL(s)
                    }
                    if o["mode"] == nil, r.input["mode"] == nil { try r.setMode("image-to-image") }
                default:
                    try r.setInput(key, value)
                }
            }
            if !sawMaxImages, r.input["max_images"] == nil { try r.setMaxImages(1) }
            try r.validate()
            return r
        } catch let e as ApixoError {
            throw CLIFailure(ExitStatus.badInput, e.message, code: e.code)
        }
    }
}

/// JSON for a task snapshot, as the CLI prints it.
func snapshotJSON(_ t: TaskSnapshot, paths: [String]? = nil) -> JSON {
    var o = JSONObject()
    o["taskId"] = .string(t.id)
    if let m = t.model { o["model"] = .string(m) }
    o["state"] = .string(t.state.name)
    if t.state == .success { o["resultUrls"] = .array(t.resultURLs.map { .string($0) }) }
    if let c = t.failCode { o["failCode"] = .string(c) }
    if let m = t.failMessage { o["failMessage"] = .string(m) }
    if t.createTimeMs > 0 { o["createTime"] = .int(t.createTimeMs) }
    if t.completeTimeMs > 0 { o["completeTime"] = .int(t.completeTimeMs) }
    if t.costTimeMs > 0 { o["costTime"] = .int(t.costTimeMs) }
    if let paths { o["paths"] = .array(paths.map { .string($0) }) }
    return .object(o)
}

/// JSON for an error, as `--json` prints it on stdout.
func errorJSON(_ f: CLIFailure, task: TaskSnapshot? = nil) -> JSON {
    var e = JSONObject()
    e["code"] = .string(f.code?.name ?? "APIXO_ERR_INVALID_ARGUMENT")
    e["message"] = .string(f.message)
    e["exitCode"] = .int(Int64(f.status))
    var o = JSONObject()
    o["error"] = .object(e)
    if let task { o["task"] = snapshotJSON(task) }
    return .object(o)
}
