import ArgumentParser
import Glibc

// Usage errors exit 2 (not swift-argument-parser's 64), so that every kind of bad input shares
// one documented code; --help and --version exit 0.
// A first word that names no command: say which one was meant (swift-argument-parser would
// only report an unexpected argument).
if let first = CommandLine.arguments.dropFirst().first, !first.hasPrefix("-") {
    let names = ApixoCommand.configuration.subcommands.map { $0._commandName }
    if !names.contains(first), first != "help" {
        let hint = closestName(to: first, in: names).map { " (did you mean '\($0)'?)" } ?? ""
        writeFD(2, "Error: unknown command '\(first)'\(hint)\n"
                   + "The commands: \(names.joined(separator: ", ")); see 'apixo --help'.\n")
        exit(ExitStatus.badInput)
    }
}

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
