import Apixo
import Glibc

@_cdecl("apixo_request_new")
public func apixo_request_new(_ model: UnsafePointer<CChar>?) -> OpaquePointer? {
    do {
        return retained(RequestBox(try Request(model: model.map { String(cString: $0) })))
    } catch let e as ApixoError {
        setLastError(e.message)
        return nil
    } catch {
        return nil
    }
}

@_cdecl("apixo_request_free")
public func apixo_request_free(_ r: OpaquePointer?) { release(r, as: RequestBox.self) }

@_cdecl("apixo_request_copy")
public func apixo_request_copy(_ r: OpaquePointer?) -> OpaquePointer? {
    do {
        return retained(RequestBox(try handle(r, "req", as: RequestBox.self).request))
    } catch {
        setLastError((error as? ApixoError)?.message ?? "\(error)")
        return nil
    }
}

private func withRequest(_ r: OpaquePointer?, _ body: (inout Request) throws -> Void) -> Int32 {
    guarded {
        let box = try handle(r, "req", as: RequestBox.self)
        var copy = box.request
        try body(&copy)
        box.request = copy  // only a valid change lands
    }
}

private func setString(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?, _ name: String,
                       _ set: (inout Request, String) throws -> Void) -> Int32 {
    withRequest(r) { req in try set(&req, try string(v, name)) }
}

@_cdecl("apixo_request_set_prompt")
public func apixo_request_set_prompt(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "prompt") { try $0.setPrompt($1) }
}

@_cdecl("apixo_request_set_mode")
public func apixo_request_set_mode(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "mode") { try $0.setMode($1) }
}

@_cdecl("apixo_request_add_image_url")
public func apixo_request_add_image_url(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "url") { try $0.addImageURL($1) }
}

@_cdecl("apixo_request_set_max_images")
public func apixo_request_set_max_images(_ r: OpaquePointer?, _ n: Int32) -> Int32 {
    withRequest(r) { try $0.setMaxImages(Int(n)) }
}

@_cdecl("apixo_request_set_resolution")
public func apixo_request_set_resolution(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "resolution") { try $0.setResolution($1) }
}

@_cdecl("apixo_request_set_aspect_ratio")
public func apixo_request_set_aspect_ratio(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "ratio") { try $0.setAspectRatio($1) }
}

@_cdecl("apixo_request_set_sequential")
public func apixo_request_set_sequential(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "mode") { try $0.setSequential($1) }
}

@_cdecl("apixo_request_set_web_search")
public func apixo_request_set_web_search(_ r: OpaquePointer?, _ enabled: Int32) -> Int32 {
    withRequest(r) { try $0.setWebSearch(enabled != 0) }
}

@_cdecl("apixo_request_set_output_format")
public func apixo_request_set_output_format(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "format") { try $0.setOutputFormat($1) }
}

@_cdecl("apixo_request_set_prompt_optimize_mode")
public func apixo_request_set_prompt_optimize_mode(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "mode") { try $0.setPromptOptimizeMode($1) }
}

@_cdecl("apixo_request_set_provider")
public func apixo_request_set_provider(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    setString(r, v, "provider") { try $0.setProvider($1) }
}

@_cdecl("apixo_request_set_callback_url")
public func apixo_request_set_callback_url(_ r: OpaquePointer?, _ v: UnsafePointer<CChar>?) -> Int32 {
    withRequest(r) { req in
        guard let v else { req.clearCallbackURL(); return }  // NULL: back to request_type "async"
        try req.setCallbackURL(String(cString: v))
    }
}

@_cdecl("apixo_request_set_input_json")
public func apixo_request_set_input_json(_ r: OpaquePointer?, _ key: UnsafePointer<CChar>?,
                                         _ value: UnsafePointer<CChar>?) -> Int32 {
    withRequest(r) { req in
        let k = try string(key, "key")
        let text = try string(value, "json_value")
        let v: JSON
        do { v = try JSON.parse(text) } catch let e as JSONParseError {
            throw invalid("json_value for input.\(k) is not valid JSON: \(e.message)")
        }
        try req.setInput(k, v)
    }
}

@_cdecl("apixo_request_set_tag")
public func apixo_request_set_tag(_ r: OpaquePointer?, _ tag: UnsafePointer<CChar>?) -> Int32 {
    withRequest(r) { req in
        guard let tag else {
            try req.setTag(nil)
            return
        }
        let t = String(cString: tag)
        guard !t.isEmpty else { throw invalid("tag must not be empty (NULL removes it)") }
        try req.setTag(t)
    }
}

@_cdecl("apixo_request_validate")
public func apixo_request_validate(_ r: OpaquePointer?) -> Int32 {
    guarded { try handle(r, "req", as: RequestBox.self).request.validate() }
}

@_cdecl("apixo_request_to_json")
public func apixo_request_to_json(_ r: OpaquePointer?,
                                  _ out: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    guarded {
        let box = try handle(r, "req", as: RequestBox.self)
        guard let out else { throw invalid("json_out must not be NULL") }
        out.pointee = try ownedCString(box.request.toJSON())
    }
}
