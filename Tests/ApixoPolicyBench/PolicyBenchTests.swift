import Glibc
import XCTest
@testable import Apixo

/// `make bench-policy` runs this with APIXO_POLICY_BENCH_SEEDS=100 in a release build and
/// prints the table for BENCHMARKS.md. Under a plain `swift test` it runs one seed of every
/// workload and checks what must hold whatever the timing: every task is seen done, the peak
/// requests in any 60 s stay within the budget, no 429, nothing beats the zero-delay bound.
final class PolicyBenchTests: XCTestCase {
    func testPolicyBench() {
        let env = getenv("APIXO_POLICY_BENCH_SEEDS").map { String(cString: $0) }
        let seeds = env.flatMap { Int($0) }.map { max(1, min($0, 10_000)) } ?? 1
        let full = env != nil
        let setup = BenchSetup()
        let rows = runPolicyBench(seeds: seeds, setup: setup, factors: full ? [0.7, 1, 1.4, 2, 2.8] : [1])
        print(benchTable(rows, seeds: seeds, setup: setup))
        for r in rows {
            for (name, s) in [("learned", r.learned), ("old", r.old), ("oracle", r.oracle)] {
                XCTAssertEqual(s.incomplete, 0, "\(r.workload) \(name): runs with unfinished tasks")
                XCTAssertEqual(s.rejected, 0, "\(r.workload) \(name): 429s")
                XCTAssertLessThanOrEqual(s.peakWindow, setup.requestsPerMinute, "\(r.workload) \(name)")
                XCTAssertGreaterThanOrEqual(s.vsBound, 1 - 1e-9, "\(r.workload) \(name) beat the zero-delay bound")
                XCTAssertGreaterThanOrEqual(s.requestsPerTask, (r.webhook ? 1 : 2) - 1e-9, "\(r.workload) \(name): a submit (and a poll without a webhook) at least")
            }
        }
    }
}
