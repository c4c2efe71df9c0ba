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
            other key is sent as an input field. Every line is checked
            before anything is sent.

            Images are saved in DIR. DIR/results.jsonl gets one line per
            input line: line, tag, input, taskId, state (success, failed,
            rejected or indeterminate), paths or fail code.

            Interrupted (Ctrl-C, kill, crash) and run again with the same
            arguments, the batch continues where it stopped and submits
            nothing twice (DIR/.apixo-journal and DIR/.apixo-pending.jsonl
            carry the state). To redo a line, delete it from results.jsonl.
            """)

    @Argument(help: ArgumentHelp("The requests, one JSON object per line.", valueName: "FILE.jsonl"))
    var file: String

    @Option(help: ArgumentHelp("Directory for the images, results.jsonl and the journal.", valueName: "DIR"))
    var out: String

    @Option(help: ArgumentHelp("Parallel downloads.", valueName: "N"))
    var downloads: Int = 4

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reporting(global) { console in
            guard (1...64).contains(downloads) else {
                throw CLIFailure(ExitStatus.badInput, "--downloads must be from 1 to 64")
            }
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
    /// Outcomes of resumed work that carry no tag and no task id.
    private var unattributed: [(ApixoCode, String)] = []
    private var attributed: Set<String> = []
    private var tagByTaskId: [String: String] = [:]
    private var finishedThisRun = 0
    private var ioFailure: CLIFailure?
    private var client: Client!
    private let started = monotonicSeconds()

    init(file: String, out: String, downloads: Int, global: GlobalOptions, console: Console) {
        self.file = file
        var o = out
        while o.count > 1, o.hasSuffix("/") { o.removeLast() }
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
        guard let data = try readWholeFile(file) else {
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
        try makeDirectories(out)

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
        for (tag, o) in carried {
            // A success being downloaded is not recorded again when the journal redelivers it.
            if o["kind"]?.stringValue == "download" { claimed.insert(tag) }
            if let id = o["taskId"]?.stringValue { tagByTaskId[id] = tag }
        }

        do {
            client = try global.makeClient(journal: out + "/.apixo-journal")
        } catch let f as CLIFailure where f.code == .io && f.message.contains("in use") {
            throw CLIFailure(ExitStatus.localIO, "another apixo batch is running on \(out) (its journal is locked)", code: .io)
        }
        defer { client.close() }
        let maxTasks = global.maxTasks

        // Work in flight when an earlier run stopped: the library takes it up again.
        let resumed: [ResumedTask]
        do {
            resumed = try client.resume { [self] code, snap, msg in outcome(tag: nil, code, snap, msg) }
        } catch let e as ApixoError {
            throw CLIFailure(e)
        }
        var resumedTags: Set<String> = []
        lock.with {
            for r in resumed {
                if let tag = r.tag ?? r.taskId.flatMap({ tagByTaskId[$0] }) {
                    resumedTags.insert(tag)
                    if let id = r.taskId { tagByTaskId[id] = tag }
                }
            }
        }

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
                try client.watch(model: model, taskId: id) { [self] code, snap, msg in outcome(tag: tag, code, snap, msg) }
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
        while Signals.received == 0 {
            if client.pendingCallbackCount > 0 {
                try? client.drain(timeoutMs: 150)
            } else {
                lock.with { if !queue.isEmpty || downloading > 0 { cond.wait(lock, until: monotonicSeconds() + 0.15) } }
            }
            let idle = lock.with { queue.isEmpty && downloading == 0 } && client.pendingCallbackCount == 0
            if idle { break }
            if console.stderrIsTTY {
                console.live(progressLine(total: list.count, maxTasks: maxTasks))
            } else if monotonicSeconds() - lastPlain >= 10 {
                if lastPlain >= 0 { console.note(progressLine(total: list.count, maxTasks: maxTasks)) }
                lastPlain = monotonicSeconds()
            }
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
            let id = snap.map { $0.id }.flatMap { $0.isEmpty ? nil : $0 }
            guard let tag = explicit ?? snap?.tag ?? id.flatMap({ tagByTaskId[$0] }) else {
                unattributed.append((code, msg))
                return
            }
            attributed.insert(tag)
            if done[tag] != nil || claimed.contains(tag) { return }
            if let id { tagByTaskId[id] = tag }
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
                    // The task exists: the next run watches it again instead of submitting.
                    let o = JSONObject([("kind", .string("watch")), ("tag", .string(tag)), ("taskId", .string(id)),
                                        ("model", .string(model))])
                    appendPending(o)
                    claimed.insert(tag)
                    unfinished[tag] = (code, msg)
                } else if msg.hasPrefix("statusTask/") {
                    // Accepted, then its status could not be read: the task exists, its id is unknown.
                    record(tag, state: "indeterminate", taskId: nil,
                           extra: [("code", .string(code.name)), ("message", .string(msg))])
                } else if [.invalidArgument, .badRequest, .forbidden, .notFound].contains(code) {
                    record(tag, state: "rejected", taskId: nil, extra: [("code", .string(code.name)), ("message", .string(msg))])
                } else {
                    // Refused before a task was created (auth, limits, network): a rerun submits it.
                    unfinished[tag] = (code, msg)
                }
            }
        }
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
        if !console.stderrIsTTY {
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

    /// Resumed work whose outcome carried neither a tag nor a task id (a failed resend, or a
    /// status failure): decided conservatively so that nothing can be submitted twice.
    private func settleUnattributed(_ resumed: [ResumedTask]) {
        lock.with {
            guard !unattributed.isEmpty else { return }
            let statusFailure = unattributed.first { $0.1.hasPrefix("statusTask/") }
            let sample = unattributed[0]
            for r in resumed {
                guard let tag = r.tag ?? r.taskId.flatMap({ tagByTaskId[$0] }),
                      done[tag] == nil, !attributed.contains(tag), !claimed.contains(tag) else { continue }
                if let id = r.taskId {
                    let o = JSONObject([("kind", .string("watch")), ("tag", .string(tag)), ("taskId", .string(id)),
                                        ("model", .string(r.model))])
                    appendPending(o)
                    unfinished[tag] = sample
                } else if let statusFailure {
                    record(tag, state: "indeterminate", taskId: nil,
                           extra: [("code", .string(statusFailure.0.name)), ("message", .string(statusFailure.1))])
                } else {
                    unfinished[tag] = sample
                }
            }
        }
    }

    private func progressLine(total: Int, maxTasks: Int) -> String {
        let outstanding = client.pendingCallbackCount
        return lock.with { () -> String in
            let finished = done.count
            let failed = done.values.filter { $0 != "success" }.count
            let inFlight = maxTasks == 0 ? outstanding : min(outstanding, maxTasks)
            let queued = outstanding - inFlight
            let elapsed = max(0.001, monotonicSeconds() - started)
            let rate = Double(finishedThisRun) / elapsed * 60
            var tail = " \(finished)/\(total) done, \(failed) failed, \(inFlight) in flight, \(queued) queued"
            if downloading + queue.count > 0 { tail += ", \(downloading + queue.count) downloading" }
            tail += ", " + (rate >= 100 ? "\(Int(rate.rounded()))" : oneDecimal(rate)) + "/min"
            let width = max(10, min(30, Console.terminalWidth() - tail.count - 3))
            let filled = total == 0 ? 0 : finished * width / total
            let s = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]" + tail
            return s
        }
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
            let resultsPath = results.path
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
                o["results"] = .string(resultsPath)
                console.resultJSON(.object(o))
            } else {
                console.result("\(list.count) lines: \(ok) succeeded, \(failed) failed, \(rejected) rejected, "
                               + "\(indeterminate) indeterminate, \(open.count) unfinished")
                console.result("results: \(resultsPath)")
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
