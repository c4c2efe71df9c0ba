import ArgumentParser
import Glibc

// Usage errors exit 2 (not swift-argument-parser's 64), so that every kind of bad input shares
// one documented code; --help and --version exit 0.
var command: ParsableCommand
do {
    command = try ApixoCommand.parseAsRoot()
} catch {
    if ApixoCommand.exitCode(for: error) == .success { ApixoCommand.exit(withError: error) }
    writeFD(2, ApixoCommand.fullMessage(for: error) + "\n")
    exit(ExitStatus.badInput)
}

do {
    try command.run()
    exit(ExitStatus.ok)
} catch let e as ExitCode {
    exit(e.rawValue)
} catch {
    if ApixoCommand.exitCode(for: error) == .success { ApixoCommand.exit(withError: error) }
    writeFD(2, "apixo: error: " + ApixoCommand.fullMessage(for: error) + "\n")
    exit(ExitStatus.unexpected)
}
