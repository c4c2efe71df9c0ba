import Apixo
import ArgumentParser
import Glibc

struct ApixoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apixo",
        abstract: "Generate images with the APIXO task API (Seedream 5.0 and other models).",
        discussion: """
            Results go to stdout: one path or line per result, or one JSON
            object with --json. Progress goes to stderr: a live line on a
            terminal, plain lines otherwise.

            CONFIGURATION
              APIXO_API_KEY    the API key (or --api-key); never printed
              APIXO_BASE_URL   the API base URL (or --base-url); default
                               \(ClientOptions.defaultBaseURL)

            \(ExitStatus.table)
            """,
        version: apixoVersion,
        subcommands: [Generate.self, Submit.self, Status.self, Wait.self, Download.self, Batch.self])
}

/// Runs a command body, turning failures into an error line (plus a JSON error object on
/// stdout with --json) and the documented exit code.
func reporting(_ global: GlobalOptions, _ body: (Console) throws -> Int32) throws {
    Signals.install()
    let console = global.console()
    var status: Int32
    do {
        try global.checkNumbers()
        status = try body(console)
    } catch let f as CLIFailure {
        report(f, task: nil, console: console)
        status = f.status
    } catch let e as ApixoError {
        let f = CLIFailure(e)
        report(f, task: e.task, console: console)
        status = f.status
    } catch let e as ExitCode {
        throw e
    } catch {
        let f = CLIFailure(ExitStatus.unexpected, "\(error)")
        report(f, task: nil, console: console)
        status = f.status
    }
    if status != 0 { throw ExitCode(status) }
}

private func report(_ f: CLIFailure, task: TaskSnapshot?, console: Console) {
    console.clearLive()
    console.error(f.message)
    if console.json { console.resultJSON(errorJSON(f, task: task)) }
}

/// A task that ended in state failed: its fail code on stderr (and the task as JSON on stdout
/// with --json); exit 5.
private func failedTask(_ t: TaskSnapshot, console: Console) -> Int32 {
    console.clearLive()
    console.error("task \(t.id) failed: \(t.failCode ?? "UNKNOWN"): \(t.failMessage ?? "")")
    if console.json { console.resultJSON(snapshotJSON(t)) }
    return ExitStatus.taskFailed
}

private func printSnapshot(_ t: TaskSnapshot, console: Console) {
    if console.json {
        console.resultJSON(snapshotJSON(t))
        return
    }
    switch t.state {
    case .success:
        console.result("\(t.id) success")
        for u in t.resultURLs { console.result(u) }
    case .failed:
        console.result("\(t.id) failed \(t.failCode ?? "UNKNOWN"): \(t.failMessage ?? "")")
    default:
        console.result("\(t.id) \(t.state.name)")
    }
}

private func printPaths(_ t: TaskSnapshot, _ paths: [String], console: Console) {
    if console.json {
        console.resultJSON(snapshotJSON(t, paths: paths))
    } else {
        for p in paths { console.result(p) }
    }
}

/// Waits with progress, then downloads; exit 5 for a failed task. A download that fails
/// after the task succeeded names the command that fetches the images again.
private func waitAndDownload(_ w: ProgressWait, out: String?, console: Console) throws -> Int32 {
    let done: TaskSnapshot
    do {
        done = try w.run()
    } catch let e as ApixoError where e.code == .taskFailed && e.task != nil {
        return failedTask(e.task!, console: console)
    }
    guard let out else {
        printSnapshot(done, console: console)
        return ExitStatus.ok
    }
    if console.stderrIsTTY { console.live("\(done.id)  downloading \(done.resultURLs.count) file(s)") }
    let paths: [String]
    do {
        paths = try w.client.downloadResults(done, to: out)
    } catch let e as ApixoError {
        console.clearLive()
        let model = w.model == Request.defaultModel ? "" : " --model \(shellQuoted(w.model))"
        let again = "apixo download \(shellQuoted(done.id)) --out \(shellQuoted(out))\(model)"
        throw CLIFailure(ExitStatus.forCode(e.code),
                         "\(e.message); task \(done.id) succeeded, fetch its images again with: \(again)", code: e.code)
    }
    console.clearLive()
    printPaths(done, paths, console: console)
    return ExitStatus.ok
}

/// At most 10^9 s (31 years) ahead: a larger --timeout would trap in the millisecond
/// conversions below.
private func deadline(_ timeout: Double?) -> Double? {
    timeout.map { monotonicSeconds() + min($0, 1e9) }
}

/// `s` as one shell word: as it is when it is plain, else in single quotes.
func shellQuoted(_ s: String) -> String {
    let plain = !s.isEmpty && s.utf8.allSatisfy { c in
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || "/._-+:,=@%".utf8.contains(c)
    }
    if plain { return s }
    var q = "'"
    for ch in s { q += ch == "'" ? "'\\''" : String(ch) }
    return q + "'"
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a request, wait for it and download the images; prints the saved paths.")

    @Argument(help: "The prompt.") var prompt: String
    @OptionGroup var request: RequestOptions
    @Option(help: ArgumentHelp("Directory for the images (created if missing).", valueName: "DIR"))
    var out: String = "."
    @Option(parsing: .unconditional,
            help: ArgumentHelp("Give up after S seconds in all: local queue, submit and wait (exit 6). "
                               + "Past it in the queue nothing is submitted; past it later the task goes on.",
                               valueName: "S"))
    var timeout: Double?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting(global) { console in
            let req = try request.request(prompt: prompt)
            try NumberRule.positive("--timeout", timeout)
            let until = deadline(timeout)
            let out = trimmedDirectory(out)
            try checkWritableDirectory(out)
            let client = try global.makeClient()
            defer { client.close() }
            let started = monotonicSeconds()
            console.live("submitting to \(req.model)…")
            let id: String
            do {
                // The deadline covers the wait in the local queue too; once sent, the submit
                // runs to its answer (never abandoned half-way).
                let queueMs = until.map { max(0, Int((($0 - monotonicSeconds()) * 1000).rounded(.up))) } ?? -1
                id = try client.submit(req, queueTimeoutMs: queueMs)
            } catch let e as ApixoError where e.code == .timeout {
                console.clearLive()
                throw CLIFailure(ExitStatus.network,
                                 "timed out after \(formatSeconds(timeout ?? 0)) waiting in the local queue (held back by "
                                 + "--max-tasks, --rpm or a retry's wait): the request was never accepted, so no task exists",
                                 code: .timeout)
            }
            if !console.stderrIsTTY { console.note("\(id): submitted") }
            let w = ProgressWait(client: client, console: console, model: req.model, taskId: id,
                                 resolution: req.input["resolution"]?.stringValue, submittedAt: started, deadline: until)
            return try waitAndDownload(w, out: out, console: console)
        }
    }
}

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit a request and print its task ID without waiting.")

    @Argument(help: "The prompt.") var prompt: String
    @OptionGroup var request: RequestOptions
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting(global) { console in
            let req = try request.request(prompt: prompt)
            let client = try global.makeClient()
            defer { client.close() }
            let id = try client.submit(req)
            if console.json {
                console.resultJSON(.object(JSONObject([("taskId", .string(id)), ("model", .string(req.model))])))
            } else {
                console.result(id)
            }
            return ExitStatus.ok
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a task's state once (exit 0 whatever the state; see `wait`).")

    @Argument(help: "The task ID.") var taskId: String
    @Option(help: "The model the task was submitted to.") var model: String = Request.defaultModel
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting(global) { console in
            let client = try global.makeClient()
            defer { client.close() }
            printSnapshot(try client.status(model: model, taskId: taskId), console: console)
            return ExitStatus.ok
        }
    }
}

struct Wait: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait until a task ends and print its result URLs (exit 5 when it failed).")

    @Argument(help: "The task ID.") var taskId: String
    @Option(help: "The model the task was submitted to.") var model: String = Request.defaultModel
    @Option(parsing: .unconditional, help: ArgumentHelp("Give up after S seconds (exit 6).", valueName: "S"))
    var timeout: Double?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting(global) { console in
            try NumberRule.positive("--timeout", timeout)
            let until = deadline(timeout)
            let client = try global.makeClient()
            defer { client.close() }
            let w = ProgressWait(client: client, console: console, model: model, taskId: taskId, deadline: until)
            return try waitAndDownload(w, out: nil, console: console)
        }
    }
}

struct Download: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a task's images (waiting for it first if needed); prints the saved paths.")

    @Argument(help: "The task ID.") var taskId: String
    @Option(help: "The model the task was submitted to.") var model: String = Request.defaultModel
    @Option(help: ArgumentHelp("Directory for the images (created if missing).", valueName: "DIR"))
    var out: String = "."
    @Option(parsing: .unconditional, help: ArgumentHelp("Give up waiting after S seconds (exit 6).", valueName: "S"))
    var timeout: Double?
    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting(global) { console in
            try NumberRule.positive("--timeout", timeout)
            let until = deadline(timeout)
            let out = trimmedDirectory(out)
            try checkWritableDirectory(out)
            let client = try global.makeClient()
            defer { client.close() }
            let w = ProgressWait(client: client, console: console, model: model, taskId: taskId, deadline: until)
            return try waitAndDownload(w, out: out, console: console)
        }
    }
}
