// What a Vapor or Hummingbird service does with apixo, without the web framework: one shared
// client made at startup, and handlers that `try await client.generate(...)` concurrently.
//
//   python3 examples/run_with_sim.py -- swift run --package-path examples/swift ApixoExample OUTDIR
import Apixo
import ApixoLogging
import Glibc
import Logging

func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

/// Startup: the one client every handler shares (it owns the rate and concurrency budget).
func makeClient() throws -> Client {
    var options = ClientOptions()  // APIXO_API_KEY and APIXO_BASE_URL come from the environment
    if let scale = env("APIXO_TIME_SCALE").flatMap(Double.init) { try options.setTimeScale(scale) }
    var logger = Logger(label: "apixo")
    logger.logLevel = .warning
    options.log(to: logger)
    return try Client(options: options)
}

/// A request handler: validates its input, generates, returns the task.
func handle(prompt: String, client: Client) async throws -> TaskSnapshot {
    var request = try Request()
    try request.setPrompt(prompt)
    try request.setMaxImages(1)
    return try await client.generate(request, timeout: .seconds(60))
}

/// Following one task's states as the polls see them. (In an async function `submit` is the
/// async overload; top-level code would pick the blocking one.)
func follow(prompt: String, client: Client) async throws -> [String] {
    var request = try Request()
    try request.setPrompt(prompt)
    try request.setMaxImages(1)
    let id = try await client.submit(request)
    var states: [String] = []
    for try await snapshot in try client.updates(taskId: id) { states.append(snapshot.state.name) }
    print("task \(id): \(states.joined(separator: " -> "))")
    return states
}

/// A wait that its caller gives up on: cancelling the Swift task ends it at once, and the
/// error carries the task id (the task goes on on the server; a later `wait` picks it up).
func giveUp(client: Client) async throws -> ApixoCode? {
    var request = try Request()
    try request.setPrompt("a kite over the dunes")
    try request.setMaxImages(1)
    let id = try await client.submit(request)
    let waiting = Task { try await client.wait(taskId: id) }
    waiting.cancel()
    guard case .failure(let e as ApixoError) = await waiting.result else { return nil }
    print("cancelled wait: \(e.code.name), task \(e.task?.id ?? "-")")
    return e.task?.id == id ? e.code : nil
}

func run() async throws {
    let out = CommandLine.arguments.dropFirst().first ?? "out-swift"
    let client = try makeClient()
    defer { client.close() }

    // Three "requests" at once, as a server would get them.
    let prompts = ["a lighthouse at dawn", "a fox in the snow", "a tram in the rain"]
    let tasks = try await withThrowingTaskGroup(of: TaskSnapshot.self) { group in
        for p in prompts { group.addTask { try await handle(prompt: p, client: client) } }
        var done: [TaskSnapshot] = []
        for try await t in group { done.append(t) }
        return done
    }

    // Following one task's states as the polls see them.
    let states = try await follow(prompt: "a paper boat on a pond", client: client)

    // A wait that its caller gives up on.
    let cancelled = try await giveUp(client: client)

    var files = 0
    for t in tasks {
        files += try client.downloadResults(t, to: out).count
    }
    print("\(tasks.count) tasks, \(files) files in \(out)")
    guard tasks.count == prompts.count, files == prompts.count, states.last == "success", cancelled == .cancelled else {
        throw ApixoError(.protocol, "unexpected outcome")
    }
}

do {
    try await run()
} catch {
    print("apixo example: \(error)")
    exit(1)
}
