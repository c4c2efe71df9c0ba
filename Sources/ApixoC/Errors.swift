import Apixo
import Glibc

private let versionString: UnsafeMutablePointer<CChar> = strdup(apixoVersion)!
private let codeNames: [UnsafeMutablePointer<CChar>] = (0...17).map { strdup(ApixoCode(rawValue: Int32($0))!.name)! }
private let unknownCodeName: UnsafeMutablePointer<CChar> = strdup("APIXO_ERR_UNKNOWN")!
private let stateNames: [UnsafeMutablePointer<CChar>] = ["pending", "processing", "success", "failed"].map { (s: String) in strdup(s)! }
private let unknownStateName: UnsafeMutablePointer<CChar> = strdup("unknown")!

@_cdecl("apixo_version")
public func apixo_version() -> UnsafePointer<CChar> { UnsafePointer(versionString) }

@_cdecl("apixo_code_name")
public func apixo_code_name(_ code: Int32) -> UnsafePointer<CChar> {
    guard code >= 0, Int(code) < codeNames.count else { return UnsafePointer(unknownCodeName) }
    return UnsafePointer(codeNames[Int(code)])
}

@_cdecl("apixo_state_name")
public func apixo_state_name(_ state: Int32) -> UnsafePointer<CChar> {
    guard state >= 0, Int(state) < stateNames.count else { return UnsafePointer(unknownStateName) }
    return UnsafePointer(stateNames[Int(state)])
}

@_cdecl("apixo_last_error")
public func apixo_last_error() -> UnsafePointer<CChar> { lastErrorPointer() }

@_cdecl("apixo_free")
public func apixo_free(_ p: UnsafeMutableRawPointer?) { free(p) }
