import Glibc
import XCTest
@testable import Apixo

/// `make bench-policy` runs this with APIXO_POLICY_BENCH_SEEDS=100 in a release build and
/// prints the table for BENCHMARKS.md. Under a plain `swift test` it runs one seed of every
/// workload and checks what must hold whatever the timing: every task is seen done, the peak
/// requests in any 60 s stay within the budget, no 429, nothing beats the zero-delay bound.
///
/// For tuning (see BENCHMARKS.md): APIXO_POLICY_BENCH_ONLY=drift,uniform keeps the workloads
/// whose names contain one of the words; APIXO_POLICY_BENCH_QUICK=1 runs the learned policy
/// only (no old policy, no oracle search); APIXO_POLICY_BENCH_PARAMS="driftRun=3,tailMean=0.5"
/// overrides `LearnedPollPolicy.Parameters`.
final class PolicyBenchTests: XCTestCase {
    static func env(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    func testPolicyBench() throws {
        let env = PolicyBenchTests.env("APIXO_POLICY_BENCH_SEEDS")
        let seeds = env.flatMap { Int($0) }.map { max(1, min($0, 10_000)) } ?? 1
        let full = env != nil
        let quick = PolicyBenchTests.env("APIXO_POLICY_BENCH_QUICK") == "1"
        let words = (PolicyBenchTests.env("APIXO_POLICY_BENCH_ONLY") ?? "").split(separator: ",").map(String.init)
        let workloads = words.isEmpty ? Workload.all : Workload.all.filter { w in words.contains { w.name.contains($0) } }
        let params = try benchParameters(PolicyBenchTests.env("APIXO_POLICY_BENCH_PARAMS") ?? "")
        var setup = BenchSetup()
        if let r = PolicyBenchTests.env("APIXO_POLICY_BENCH_RESERVE").flatMap({ Int($0) }) { setup.pollReserve = max(0, min(r, 59)) }
        let rows = runPolicyBench(seeds: seeds, setup: setup, workloads: workloads,
                                  factors: full && !quick ? [0.7, 1, 1.4, 2, 2.8] : [1], others: !quick,
                                  learned: { LearnedPollPolicy(scale: 1, parameters: params) })
        print(benchTable(rows, seeds: seeds, setup: setup))
        for r in rows {
            for (name, s) in [("learned", r.learned), ("old", r.old), ("oracle", r.oracle)].compactMap({ n, s in s.map { (n, $0) } }) {
                XCTAssertEqual(s.incomplete, 0, "\(r.workload) \(name): runs with unfinished tasks")
                XCTAssertEqual(s.rejected, 0, "\(r.workload) \(name): 429s")
                XCTAssertLessThanOrEqual(s.peakWindow, setup.requestsPerMinute, "\(r.workload) \(name)")
                XCTAssertGreaterThanOrEqual(s.vsBound, 1 - 1e-9, "\(r.workload) \(name) beat the zero-delay bound")
                XCTAssertGreaterThanOrEqual(s.requestsPerTask, (r.webhook ? 1 : 2) - 1e-9, "\(r.workload) \(name): a submit (and a poll without a webhook) at least")
            }
        }
    }
}

struct BenchParameterError: Error, CustomStringConvertible {
    var description: String
}

/// `name=value,...` over the defaults of `LearnedPollPolicy.Parameters`.
func benchParameters(_ text: String) throws -> LearnedPollPolicy.Parameters {
    var p = LearnedPollPolicy.Parameters()
    for item in text.split(separator: ",") {
        let kv = item.split(separator: "=", maxSplits: 1).map { String($0.filter { $0 != " " }) }
        guard kv.count == 2, let v = Double(kv[1]), v.isFinite else {
            throw BenchParameterError(description: "APIXO_POLICY_BENCH_PARAMS: expected name=number, got \(item)")
        }
        switch kv[0] {
        case "window": p.window = Int(max(1, min(v, 1000)))
        case "driftRun": p.driftRun = Int(max(0, min(v, 100)))
        case "priorWeight": p.priorWeight = v
        case "bandwidth": p.bandwidth = v
        case "minBandwidth": p.minBandwidth = v
        case "tailWeight": p.tailWeight = v
        case "earlyTailWeight": p.earlyTailWeight = v
        case "earlyTailCount": p.earlyTailCount = v
        case "tailMean": p.tailMean = v
        case "targetShare": p.targetShare = v
        case "minimumPrice": p.minimumPrice = v
        case "idlePriceFactor": p.idlePriceFactor = v
        case "step": p.step = v
        case "lateShare": p.lateShare = v
        case "maximumLateGap": p.maximumLateGap = v
        case "minimumGap": p.minimumGap = v
        case "maximumGap": p.maximumGap = v
        default: throw BenchParameterError(description: "APIXO_POLICY_BENCH_PARAMS: no parameter \(kv[0])")
        }
    }
    return p
}
