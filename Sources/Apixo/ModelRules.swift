/// What the library knows about a model's `input`: the documented fields and their allowed
/// values. Models without rules pass through with structural checks only.
struct ModelRules {
    var model: String
    var modes: [String]
    var resolutions: [String]
    /// Whether explicit sizes such as `2048x2048`, `2048X2048`, `2048*2048` are accepted.
    var explicitSizes: Bool
    var aspectRatios: [String]
    var maxImages: ClosedRange<Int>
    var maxImageURLs: Int
    var sequentialModes: [String]
    var outputFormats: [String]
    var promptOptimizeModes: [String]
    var promptMaxCharacters: Int
    /// Typical generation seconds per resolution (the documented ranges), for poll planning.
    var expectedSeconds: [String: ClosedRange<Double>]

    static let seedream50 = ModelRules(
        model: "seedream-5-0",
        modes: ["text-to-image", "image-to-image"],
        resolutions: ["2K", "3K"],
        explicitSizes: true,
        aspectRatios: ["1:1", "2:3", "3:2", "4:3", "3:4", "9:16", "16:9", "21:9"],
        maxImages: 1...10,
        maxImageURLs: 14,
        sequentialModes: ["disabled", "auto"],
        outputFormats: ["jpeg", "png"],
        promptOptimizeModes: ["standard"],
        promptMaxCharacters: 5000,
        expectedSeconds: ["2K": 25...35, "3K": 35...50])

    /// Seedream 4.5: the same input as 5.0 but 2K or 4K.
    static let seedream45: ModelRules = {
        var r = seedream50
        r.model = "seedream-4-5"
        r.resolutions = ["2K", "4K"]
        r.expectedSeconds = ["2K": 25...35, "4K": 45...60]
        return r
    }()

    static func forModel(_ model: String) -> ModelRules? {
        switch model {
        case "seedream-5-0": return seedream50
        case "seedream-4-5": return seedream45
        default: return nil
        }
    }

    static func list(_ values: [String]) -> String {
        values.joined(separator: ", ")
    }

    /// The pixel range and the most elongated ratio of an explicit size: the provider's
    /// published bounds (2560x1440 to 4096x4096 pixels, ratios from 1:16 to 16:1).
    static let explicitPixels = 3_686_400...16_777_216
    static let explicitMaxRatio = 16

    /// Whether `s` is an explicit size: digits, one of `x`, `X`, `*`, digits, inside the
    /// pixel range and ratio bounds.
    static func isExplicitSize(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard let sep = u.firstIndex(where: { $0 == UInt8(ascii: "x") || $0 == UInt8(ascii: "X") || $0 == UInt8(ascii: "*") })
        else { return false }
        let w = u[..<sep], h = u[(sep + 1)...]
        func num(_ d: ArraySlice<UInt8>) -> Int? {
            guard !d.isEmpty, d.count <= 5, d.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return d.reduce(0) { $0 * 10 + Int($1 - 48) }
        }
        guard let wv = num(w), let hv = num(h), wv > 0, hv > 0 else { return false }
        return explicitPixels.contains(wv * hv) && wv <= explicitMaxRatio * hv && hv <= explicitMaxRatio * wv
    }

    /// Checks one input field's value. Fields the rules do not know pass.
    func check(field: String, value: JSON) -> String? {
        func oneOf(_ allowed: [String]) -> String? {
            guard let s = value.stringValue, allowed.contains(s) else {
                return "input.\(field) must be one of \(ModelRules.list(allowed))"
            }
            return nil
        }
        switch field {
        case "prompt":
            guard let s = value.stringValue else { return "input.prompt must be a string of 1 to \(promptMaxCharacters) characters" }
            let n = s.unicodeScalars.count
            if n < 1 || n > promptMaxCharacters {
                return "input.prompt must be 1 to \(promptMaxCharacters) characters (got \(n))"
            }
            return nil
        case "mode":
            return oneOf(modes)
        case "max_images":
            // An integer in the JSON sense: 2.0 and true are not.
            guard case .int(let n) = value, maxImages.contains(Int(clamping: n)) else {
                return "input.max_images must be an integer from \(maxImages.lowerBound) to \(maxImages.upperBound)"
            }
            return nil
        case "image_urls":
            guard let a = value.arrayValue else {
                return "input.image_urls must be an array of 1 to \(maxImageURLs) http(s) URLs"
            }
            if a.count > maxImageURLs { return "input.image_urls takes at most \(maxImageURLs) URLs (got \(a.count))" }
            for e in a {
                guard let s = e.stringValue, Request.isHTTPURL(s) else {
                    return "input.image_urls must hold http or https URLs"
                }
            }
            return nil
        case "resolution":
            if let s = value.stringValue, resolutions.contains(s) || (explicitSizes && ModelRules.isExplicitSize(s)) {
                return nil
            }
            return "input.resolution must be one of \(ModelRules.list(resolutions))"
                + (explicitSizes ? " or an explicit size WIDTHxHEIGHT (x, X or *) of 3686400 to 16777216 pixels"
                       + " and a ratio from 1:16 to 16:1, e.g. 2048x2048" : "")
        case "aspect_ratio":
            return oneOf(aspectRatios)
        case "sequential_image_generation":
            return oneOf(sequentialModes)
        case "web_search":
            return value.boolValue == nil ? "input.web_search must be true or false" : nil
        case "output_format":
            return oneOf(outputFormats)
        case "prompt_optimize_mode":
            return oneOf(promptOptimizeModes)
        default:
            return nil
        }
    }
}
