import Apixo
import ArgumentParser
import Glibc

struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every request of a JSON-lines file under the limits; resumable.",
        discussion: """
            Each non-blank line of FILE is one JSON object: a prompt plus
            any options, e.g.
              {"prompt": "a red fox", "max_images": 2, "format": "png"}
            Keys: prompt, model, provider, max_images, resolution,
            aspect_ratio, format, sequential (true or false), web_search,
            image_urls, mode, input (an object of raw input fields); any
            other key is an error that names its line (fields the CLI does
            not know go under "input"). Every line is checked before
            anything is sent. FILE - reads the lines from stdin.

            Images are saved in DIR. DIR/results.jsonl gets one line per
            input line: line, tag, input, taskId, state (success, failed,
            rejected or indeterminate), paths or fail code.

            Interrupted (Ctrl-C, kill, crash) and run again with the same
            arguments, the batch continues where it stopped and submits
            nothing twice (DIR/.apixo-journal and DIR/.apixo-pending.jsonl
            carry the state). To redo a line, delete it from results.jsonl.
            """)

    @Argument(help: ArgumentHelp("The requests, one JSON object per line (- for stdin).", valueName: "FILE.jsonl"))
    var file: String

    @Option(help: ArgumentHelp("Directory for the images, results.jsonl and the journal.", valueName: "DIR"))
    var out: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Parallel downloads (1 to 64).", valueName: "N"))
    var downloads: Int = 4

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting(global) { console in
            try NumberRule.range(1...64, "--downloads", downloads)
            return try BatchRun(file: file, out: out, downloads: downloads, global: global, console: console).run()
        }
    }
}

/// One line of the input file.
struct BatchItem {
    let line: Int
    let tag: String
    let input: JSONObject
    let request: Request
}

/// A success whose files are still to be downloaded.
struct DownloadJob {
    let tag: String
    let taskId: String
    let model: String
    /// nil for a job taken over from an earlier run: its status is fetched again.
    let snapshot: TaskSnapshot?
}

/// The batch: parse, resume, submit, record, download, summarise.
final class BatchRun {
    let file: String
    let out: String
    let downloadWorkers: Int
    let global: GlobalOptions
    let console: Console
    let results: JSONLinesFile
    let pending: JSONLinesFile

    private let lock = Mutex()
    private let cond = Condition()
    private var items: [String: BatchItem] = [:]
    /// tag -> state, for every line with a final result (this run and earlier ones).
    private var done: [String: String] = [:]
    /// Tags handed to the download workers (queued or running) or recorded for a re-watch.
    private var claimed: Set<String> = []
    private var queue: [DownloadJob] = []
    private var downloading = 0
    private var stopWorkers = false
    private var interrupted = false
    /// tag -> why it is not finished (a transient error); a rerun continues it.
    private var unfinished: [String: (ApixoCode, String)] = [:]
    /// Outcomes of resumed work that carry no tag (a redelivered outcome whose snapshot the
    /// journal could not keep); settled against `resume`'s list at the end.
    private var unattributed: [(ApixoCode, String)] = []
    private var attributed: Set<String> = []
    /// The last progress object written with --json, to write only changes.
    private var lastProgress: String?
    private var finishedThisRun = 0
    private var ioFailure: CLIFailure?
    private var client: Client!
    private let started = monotonicSeconds()

    init(file: String, out: String, downloads: Int, global: GlobalOptions, console: Console) {
        self.file = file
        let o = trimmedDirectory(out)
        self.out = o
        downloadWorkers = downloads
        self.global = global
        self.console = console
        results = JSONLinesFile(path: o + "/results.jsonl")
        pending = JSONLinesFile(path: o + "/.apixo-pending.jsonl")
    }

    // MARK: input

    static func tag(line: Int, text: String) -> String { "L\(line)-\(fnv1a64(text))" }

    /// Parses and checks every line; any problem stops the batch before anything is sent.
    func parseInput() throws -> [BatchItem] {
        guard let data = file == "-" ? try readAll(0, name: "stdin") : try readWholeFile(file) else {
            throw CLIFailure(ExitStatus.badInput, "cannot open \(file): no such file", code: .invalidArgument)
        }
        var list: [BatchItem] = []
        var problems: [String] = []
        var lineNo = 0
        for raw in data.split(separator: 10, omittingEmptySubsequences: false) {
            lineNo += 1
            var bytes = Array(raw)
            if bytes.last == 13 { bytes.removeLast() }
            let text = String(decoding: bytes, as: UTF8.self)
            if text.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            guard let obj = (try? JSON.parse(bytes))?.objectValue else {
                problems.append("line \(lineNo): not a JSON object")
                continue
            }
            do {
                var req = try RequestBuilder.build(obj)
                let tag = BatchRun.tag(line: lineNo, text: text)
                try req.setTag(tag)
                list.append(BatchItem(line: lineNo, tag: tag, input: obj, request: req))
            } catch let f as CLIFailure {
                problems.append("line \(lineNo): \(f.message)")
            }
        }
        if !problems.isEmpty {
            let shown = problems.prefix(20).joined(separator: "\n  ")
            let more = problems.count > 20 ? "\n  (\(problems.count - 20) more)" : ""
            throw CLIFailure(ExitStatus.badInput,
                             "\(file): \(problems.count) bad line(s), nothing was sent:\n  \(shown)\(more)",
                             code: .invalidArgument)
        }
        if list.isEmpty { throw CLIFailure(ExitStatus.badInput, "\(file) holds no requests", code: .invalidArgument) }
        return list
    }

    // MARK: the run

    func run() throws -> Int32 {
        let list = try parseInput()
        for it in list { items[it.tag] = it }
        try checkWritableDirectory(out)

        // What earlier runs finished.
        for o in try results.load() {
            if let tag = o["tag"]?.stringValue, done[tag] == nil { done[tag] = o["state"]?.stringValue ?? "unknown" }
        }
        // What earlier runs handed over but did not finish: downloads and re-watches.
        var carried: [String: JSONObject] = [:]
        var carriedOrder: [String] = []
        for o in try pending.load() {
            guard let tag = o["tag"]?.stringValue, done[tag] == nil else { continue }
            if carried[tag] == nil { carriedOrder.append(tag) }
            carried[tag] = o
        }
        try pending.rewrite(carriedOrder.map { carried[$0]! })
        for (tag, o) in carried where o["kind"]?.stringValue == "download" {
            // A success being downloaded is not recorded again when the journal redelivers it.
            claimed.insert(tag)
        }

        do {
            client = try global.makeClient(journal: out + "/.apixo-journal")
        } catch let f as CLIFailure where f.code == .io && f.message.contains("in use") {
            throw CLIFailure(ExitStatus.localIO, "another apixo batch is running on \(out) (its journal is locked)", code: .io)
        }
        defer { client.close() }

        // Work in flight when an earlier run stopped: the library takes it up again. Every
        // journal entry (submit or watch) carries its line's tag, and so do its snapshots.
        let resumed: [ResumedTask]
        do {
            resumed = try client.resume { [self] code, snap, msg in outcome(tag: nil, code, snap, msg) }
        } catch let e as ApixoError {
            throw CLIFailure(e)
        }
        let resumedTags = Set(resumed.compactMap { $0.tag })

        // Carried-over work the journal no longer tracks.
        var carriedDownloads = 0, rewatched = 0
        for tag in carriedOrder {
            let o = carried[tag]!
            guard let id = o["taskId"]?.stringValue else { continue }
            let model = o["model"]?.stringValue ?? Request.defaultModel
            if o["kind"]?.stringValue == "download" {
                lock.with {
                    queue.append(DownloadJob(tag: tag, taskId: id, model: model, snapshot: nil))
                }
                carriedDownloads += 1
            } else if !resumedTags.contains(tag) {
                // Tagged, so that a run stopped meanwhile resumes this watch with its line.
                try client.watch(model: model, taskId: id, tag: tag) { [self] code, snap, msg in outcome(tag: tag, code, snap, msg) }
                rewatched += 1
            }
        }

        var workers: [pthread_t] = []
        Signals.blocked {
            for _ in 0..<downloadWorkers { workers.append(startThread { [self] in worker() }) }
        }

        // Everything else is submitted now; the library queues what the limits hold back.
        // (Resumed callbacks may be recording results meanwhile: read `done` under the lock.)
        let (todo, doneBefore) = lock.with {
            (list.filter { done[$0.tag] == nil && !resumedTags.contains($0.tag) && carried[$0.tag] == nil },
             list.filter { done[$0.tag] != nil }.count)
        }
        console.note("batch: \(list.count) lines: \(doneBefore) already done, \(resumedTags.count) resumed, "
                     + "\(carriedDownloads + rewatched) carried over, \(todo.count) to submit")
        var submitted = 0
        for it in todo {
            if Signals.received != 0 { break }
            do {
                try client.submitAsync(it.request) { [self] code, snap, msg in outcome(tag: it.tag, code, snap, msg) }
                submitted += 1
            } catch let e as ApixoError {
                lock.with { stopWorkers = true; cond.broadcast() }
                for w in workers { pthread_join(w, nil) }
                throw CLIFailure(e)
            }
        }

        // Wait for every callback and download, redrawing the progress line.
        var lastPlain = -1.0
        showProgress(total: list.count, lastPlain: &lastPlain)
        while Signals.received == 0 {
            if client.pendingCallbackCount > 0 {
                try? client.drain(timeoutMs: 150)
            } else {
                lock.with { if !queue.isEmpty || downloading > 0 { cond.wait(lock, until: monotonicSeconds() + 0.15) } }
            }
            let idle = lock.with { queue.isEmpty && downloading == 0 } && client.pendingCallbackCount == 0
            if idle { break }
            showProgress(total: list.count, lastPlain: &lastPlain)
        }
        let wasInterrupted = Signals.received != 0
        if wasInterrupted {
            console.clearLive()
            console.note("apixo: interrupted: stopping; run the same command again to continue", always: true)
            lock.with {
                interrupted = true
                stopWorkers = true
                cond.broadcast()
            }
            client.close()  // pending callbacks fire with .closed: the journal keeps that work
        }
        lock.with {
            stopWorkers = true
            cond.broadcast()
        }
        for w in workers { pthread_join(w, nil) }
        // The last word on progress: with --json, done equals lines once every line is done.
        showProgress(total: list.count, lastPlain: &lastPlain, final: true)
        console.clearLive()
        if !wasInterrupted {
            settleUnattributed(resumed)
            // Drop what this run finished from the carry-over file.
            lock.with {
                if let live = try? pending.load().filter({ o in o["tag"]?.stringValue.map { done[$0] == nil } ?? false }) {
                    try? pending.rewrite(live)
                }
            }
        }
        return summary(total: list, submitted: submitted, interrupted: wasInterrupted)
    }

    // MARK: outcomes (dispatcher thread)

    private func outcome(tag explicit: String?, _ code: ApixoCode, _ snap: TaskSnapshot?, _ msg: String) {
        lock.with {
            // A close is not an outcome: the journal keeps the work for the next run.
            if code == .closed || code == .cancelled { return }
            // The snapshot is there for every outcome of this run: the task, or a stand-in whose
            // id is the task's when it exists and "" when no task id is known.
            let id = snap.map { $0.id }.flatMap { $0.isEmpty ? nil : $0 }
            guard let tag = explicit ?? snap?.tag else {
                unattributed.append((code, msg))
                return
            }
            attributed.insert(tag)
            if done[tag] != nil || claimed.contains(tag) { return }
            let model = snap?.model ?? items[tag]?.request.model ?? Request.defaultModel
            switch code {
            case .ok:
                guard let snap, let id else {
                    record(tag, state: "indeterminate", taskId: nil, extra: [("code", .string(ApixoCode.protocol.name)),
                                                                               ("message", .string("success without a task"))])
                    return
                }
                var o = JSONObject([("kind", .string("download")), ("tag", .string(tag)), ("taskId", .string(id)),
                                    ("model", .string(model)), ("urls", .array(snap.resultURLs.map { .string($0) }))])
                if let line = items[tag]?.line { o["line"] = .int(Int64(line)) }
                appendPending(o)
                claimed.insert(tag)
                unfinished[tag] = nil
                queue.append(DownloadJob(tag: tag, taskId: id, model: model, snapshot: snap))
                cond.broadcast()
            case .taskFailed:
                record(tag, state: "failed", taskId: id,
                       extra: [("failCode", .string(snap?.failCode ?? "UNKNOWN")), ("failMessage", .string(snap?.failMessage ?? msg))])
            case .indeterminate:
                record(tag, state: "indeterminate", taskId: id,
                       extra: [("code", .string(code.name)), ("message", .string(msg))])
            default:
                if let id {
                    // The task exists (tracking ended without a final state, e.g. its status could
                    // not be read): the next run watches it again instead of submitting.
                    rewatchNextRun(tag: tag, taskId: id, model: model, reason: (code, msg))
                } else if [.invalidArgument, .badRequest, .forbidden, .notFound].contains(code) {
                    record(tag, state: "rejected", taskId: nil, extra: [("code", .string(code.name)), ("message", .string(msg))])
                } else {
                    // Refused before a task was created (auth, limits, network): a rerun submits it.
                    unfinished[tag] = (code, msg)
                }
            }
        }
    }

    /// Hands a task that exists to the next run, which watches it instead of submitting (lock held).
    private func rewatchNextRun(tag: String, taskId: String, model: String, reason: (ApixoCode, String)) {
        appendPending(JSONObject([("kind", .string("watch")), ("tag", .string(tag)), ("taskId", .string(taskId)),
                                  ("model", .string(model))]))
        claimed.insert(tag)
        unfinished[tag] = reason
    }

    /// Records carried-over work for the next run (lock held).
    private func appendPending(_ o: JSONObject) {
        do {
            try pending.append(o)
        } catch {
            ioFailure = ioFailure ?? (error as? CLIFailure ?? CLIFailure(ExitStatus.localIO, "\(error)", code: .io))
        }
    }

    /// Appends the final line for `tag` (lock held).
    private func record(_ tag: String, state: String, taskId: String?, extra: [(String, JSON)]) {
        guard done[tag] == nil else { return }
        var o = JSONObject()
        let item = items[tag]
        o["line"] = item.map { .int(Int64($0.line)) } ?? BatchRun.lineFromTag(tag)
        o["tag"] = .string(tag)
        o["input"] = item.map { .object($0.input) } ?? .null
        o["taskId"] = taskId.map { .string($0) } ?? .null
        o["state"] = .string(state)
        for (k, v) in extra { o[k] = v }
        do {
            try results.append(o)
        } catch {
            ioFailure = ioFailure ?? (error as? CLIFailure ?? CLIFailure(ExitStatus.localIO, "\(error)", code: .io))
            return
        }
        done[tag] = state
        unfinished[tag] = nil
        finishedThisRun += 1
        // On a terminal only the lines that did not succeed are named (above the live line).
        if !console.stderrIsTTY || state != "success" {
            let line = item.map { "line \($0.line)" } ?? tag
            var what = state
            if let taskId { what += " " + taskId }
            if state == "success", let n = o["paths"]?.arrayValue?.count { what += " (\(n) file\(n == 1 ? "" : "s"))" }
            if state == "failed" { what += " " + (o["failCode"]?.stringValue ?? "") }
            if state == "rejected" || state == "indeterminate" { what += ": " + (o["message"]?.stringValue ?? "") }
            console.note("\(line): \(what)")
        }
    }

    static func lineFromTag(_ tag: String) -> JSON {
        guard tag.hasPrefix("L"), let dash = tag.firstIndex(of: "-"),
              let n = Int64(tag[tag.index(after: tag.startIndex)..<dash]) else { return .null }
        return .int(n)
    }

    // MARK: downloads (worker threads)

    private func worker() {
        while true {
            let job: DownloadJob? = lock.with {
                while queue.isEmpty && !stopWorkers { cond.wait(lock, until: monotonicSeconds() + 0.5) }
                if interrupted || queue.isEmpty { return nil }
                downloading += 1
                return queue.removeFirst()
            }
            guard let job else { return }
            download(job)
            lock.with {
                downloading -= 1
                cond.broadcast()
            }
        }
    }

    private func download(_ job: DownloadJob) {
        do {
            var snap = job.snapshot
            if snap == nil {
                snap = try client.status(model: job.model, taskId: job.taskId)
            }
            guard let s = snap, s.state == .success else {
                let state = snap?.state.name ?? "unknown"
                lock.with { unfinished[job.tag] = (.protocol, "task \(job.taskId) is \(state), expected success") }
                return
            }
            let paths = try client.downloadResults(s, to: out)
            lock.with {
                record(job.tag, state: "success", taskId: job.taskId,
                       extra: [("paths", .array(paths.map { .string($0) })),
                               ("urls", .array(s.resultURLs.map { .string($0) }))])
            }
        } catch let e as ApixoError {
            if e.code == .closed { return }  // interrupted: the pending record stays for the next run
            lock.with { unfinished[job.tag] = (e.code, "download of task \(job.taskId): \(e.message)") }
        } catch {
            lock.with { unfinished[job.tag] = (.io, "download of task \(job.taskId): \(error)") }
        }
    }

    // MARK: end of the run

    /// Resumed work whose outcome came without a snapshot, so without its tag (the journal kept
    /// the outcome of an earlier run but not what the task looked like). Settled conservatively,
    /// so that nothing can be submitted twice: a line whose task id is known is watched by the
    /// next run; one without (a submit that was refused) stays unfinished.
    private func settleUnattributed(_ resumed: [ResumedTask]) {
        lock.with {
            guard let reason = unattributed.first else { return }
            for r in resumed {
                guard let tag = r.tag, done[tag] == nil, !attributed.contains(tag), !claimed.contains(tag) else { continue }
                if let id = r.taskId {
                    rewatchNextRun(tag: tag, taskId: id, model: r.model, reason: reason)
                } else {
                    unfinished[tag] = reason
                }
            }
        }
    }

    // MARK: progress

    struct Progress {
        var lines = 0
        var done = 0
        /// Done, but not a success (failed, rejected or indeterminate).
        var failed = 0
        /// Tasks taking one of the --max-tasks slots: submit sent, running, or possibly running.
        var inFlight = 0
        /// Submits the library holds back (--max-tasks, --rpm, or a retry's wait).
        var queued = 0
        var downloading = 0
    }

    /// In flight and queued are the client's own counters, read together on its engine thread
    /// (pending callbacks would lag: a task's slot is free, and the next submit sent, before its
    /// callback has run).
    private func progress(total: Int) -> Progress {
        let stats = client.stats()
        return lock.with { () -> Progress in
            var p = Progress()
            p.lines = total
            p.done = done.count
            p.failed = done.values.filter { $0 != "success" }.count
            p.queued = stats.queuedSubmits
            p.inFlight = stats.slotsInUse
            p.downloading = downloading + queue.count
            return p
        }
    }

    private func perMinute() -> Double {
        let elapsed = max(0.001, monotonicSeconds() - started)
        return Double(lock.with { finishedThisRun }) / elapsed * 60
    }

    /// On a terminal: the live bar. With --json: one `{"progress": {...}}` object on stderr per
    /// change. Otherwise: a plain line every 10 s.
    private func showProgress(total: Int, lastPlain: inout Double, final: Bool = false) {
        if console.quiet { return }
        if console.stderrIsTTY {
            if final { return }
            console.live(progressLine(progress(total: total)))
        } else if console.json {
            let p = progress(total: total)
            var o = JSONObject()
            o["lines"] = .int(Int64(p.lines))
            o["done"] = .int(Int64(p.done))
            o["failed"] = .int(Int64(p.failed))
            o["inFlight"] = .int(Int64(p.inFlight))
            o["queued"] = .int(Int64(p.queued))
            o["downloading"] = .int(Int64(p.downloading))
            let text = JSON.object(o).serialized()
            if text != lastProgress {
                lastProgress = text
                console.event(JSONObject([("progress", .object(o))]))
            }
        } else if !final, monotonicSeconds() - lastPlain >= 10 {
            if lastPlain >= 0 { console.note(progressLine(progress(total: total))) }
            lastPlain = monotonicSeconds()
        }
    }

    private func progressLine(_ p: Progress) -> String {
        let rate = perMinute()
        var tail = " \(p.done)/\(p.lines) done, \(p.failed) failed, \(p.inFlight) in flight, \(p.queued) queued"
        if p.downloading > 0 { tail += ", \(p.downloading) downloading" }
        tail += ", " + (rate >= 100 ? "\(Int(rate.rounded()))" : oneDecimal(rate)) + "/min"
        let width = max(10, min(30, Console.terminalWidth() - tail.count - 3))
        let filled = p.lines == 0 ? 0 : p.done * width / p.lines
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]" + tail
    }

    private func summary(total list: [BatchItem], submitted: Int, interrupted: Bool) -> Int32 {
        lock.with { () -> Int32 in
            var counts: [String: Int] = [:]
            var indeterminateLines: [Int] = []
            for it in list {
                let state = done[it.tag] ?? "unfinished"
                counts[state, default: 0] += 1
                if state == "indeterminate" { indeterminateLines.append(it.line) }
            }
            let ok = counts["success"] ?? 0, failed = counts["failed"] ?? 0, rejected = counts["rejected"] ?? 0
            let indeterminate = counts["indeterminate"] ?? 0
            let open = list.filter { done[$0.tag] == nil }
            // Named only when it exists (nothing is written before the first final result).
            let resultsPath: String? = access(results.path, F_OK) == 0 ? results.path : nil
            if console.json {
                var o = JSONObject()
                o["lines"] = .int(Int64(list.count))
                o["succeeded"] = .int(Int64(ok))
                o["failed"] = .int(Int64(failed))
                o["rejected"] = .int(Int64(rejected))
                o["indeterminate"] = .int(Int64(indeterminate))
                o["unfinished"] = .int(Int64(open.count))
                o["submitted"] = .int(Int64(submitted))
                o["interrupted"] = .bool(interrupted)
                o["results"] = resultsPath.map { .string($0) } ?? .null
                console.resultJSON(.object(o))
            } else {
                console.result("\(list.count) lines: \(ok) succeeded, \(failed) failed, \(rejected) rejected, "
                               + "\(indeterminate) indeterminate, \(open.count) unfinished")
                console.result(resultsPath.map { "results: \($0)" } ?? "results: none recorded yet")
            }
            if !indeterminateLines.isEmpty {
                console.note("\(indeterminate) line(s) indeterminate (a submit was sent but its answer was lost; the task "
                             + "may exist and was not resubmitted): lines \(indeterminateLines.prefix(20).map(String.init).joined(separator: ", "))",
                             always: true)
            }
            if let ioFailure {
                console.error(ioFailure.message)
                return ExitStatus.localIO
            }
            if interrupted { return Signals.exitStatus }
            if !open.isEmpty {
                let reasons = open.compactMap { unfinished[$0.tag] }
                let first = reasons.first
                console.note("\(open.count) line(s) unfinished"
                             + (first.map { " (\($0.0.name): \($0.1))" } ?? "")
                             + "; run the same command again to continue", always: true)
                let codes = Set(reasons.map { ExitStatus.forCode($0.0) })
                for c in [ExitStatus.auth, ExitStatus.rateLimited, ExitStatus.network, ExitStatus.localIO] where codes.contains(c) {
                    return c
                }
                return first.map { ExitStatus.forCode($0.0) } ?? ExitStatus.network
            }
            if indeterminate > 0 { return ExitStatus.indeterminate }
            if failed > 0 { return ExitStatus.taskFailed }
            if rejected > 0 { return ExitStatus.badInput }
            return ExitStatus.ok
        }
    }
}
