#!/usr/bin/env python3
"""Many processes on one account: the shared budget on Redis against local budgets.

    python3 bench/shared_budget.py [--tasks 100] [--procs 1,2,4,8]

For each process count P, P worker processes (Tests/redis/worker.c, built by `make
test-redis`) share TASKS tasks on one API key against apixo-sim with the account's limits
(60 requests a minute, 10 concurrent tasks, time scale 0.02), once with the shared budget
and once (the control) with each process on a local budget. Prints a Markdown table:
makespan in API seconds and against one process doing all the tasks alone, 429s, and Redis
round trips per task (from redis-server's own command counters, INFO commandstats).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "Tests", "redis"))
import test_shared_budget as t  # noqa: E402
from redis_harness import commands_run as redis_commands  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--procs", default="1,2,4,8")
    a = ap.parse_args()
    scale = float(t.SCALE)
    sim, redis = t.Sim(), t.Redis()
    try:
        rows = []
        alone = None
        for p in [int(x) for x in a.procs.split(",")]:
            per = a.tasks // p
            before = redis_commands(redis.port)
            wall, results, stats = t.run(sim, p, per, "bench%d-" % p, shared=redis.url)
            trips = redis_commands(redis.port) - before
            ok = sum(lines[-1]["ok"] for _, lines, _ in results if lines)
            if alone is None:
                alone = wall
            rows.append(("shared", p, per * p, ok, wall / scale, wall / alone, t.rate_limited(stats),
                         stats["requests_total"] / (per * p), trips / (per * p), trips / p / (wall / scale / 2)))
            wall, results, stats = t.run(sim, p, per, "local%d-" % p)
            ok = sum(lines[-1]["ok"] for _, lines, _ in results if lines)
            rows.append(("local (control)", p, per * p, ok, wall / scale, wall / alone, t.rate_limited(stats),
                         stats["requests_total"] / (per * p), 0.0, 0.0))
        print("| budget | processes | tasks | done | makespan (API s) | vs 1 process | 429s | API requests/task "
              "| Redis round trips/task | round trips per client per 2 API s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print("| %s | %d | %d | %d | %.0f | %.2f | %d | %.2f | %.2f | %.2f |" % r)
    finally:
        sim.stop()
        redis.stop()


if __name__ == "__main__":
    main()
