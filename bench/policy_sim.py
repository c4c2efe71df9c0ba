#!/usr/bin/env python3
"""Poll policies against the simulator: the real library (libapixo through the Python
binding), 100 tasks per workload, on a clock scaled by 0.01, with the account's documented
limits (60 requests a minute, 10 concurrent tasks). Run by `make bench-policy` after the
simulated-time bench.

    python3 bench/policy_sim.py [--tasks 100] [--time-scale 0.01] [--runs 10] [--only uniform,...]
                                [--policies learned,ewma]

Workloads (sim/apixo_sim.py --latency, see sim/README.md): uniform (the documented 25-35 s),
drift (x2 from the 40th task on), lognormal (median 30 s, sigma 0.35), bimodal (half
25-35 s, half 35-50 s by a hidden coin), webhook (uniform, results by webhook), two models
(seedream-5-0 2K and seedream-4-5 4K, by a coin).

Per workload and policy: the mean over the runs of makespan / (sum of durations / 10), where
makespan runs from the first submit to the last callback and a task's duration is its server
completeTime - createTime; the same ratio for the zero-delay bound of those very durations
(list scheduling in submit order on 10 slots, every completion seen at once: what luck the
seeds' draws bring); requests per task; 429s. The policy is chosen with
APIXO_POLL_POLICY (learned, the default, or ewma). Results are a Markdown table.
"""
import argparse
import heapq
import os
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("APIXO_LIBRARY", os.path.join(ROOT, "build", "lib", "libapixo.so"))
import apixo  # noqa: E402
from run import Sim  # noqa: E402  (bench/run.py)

# name, simulator options, callback mode, models (model, resolution) chosen by a coin
WORKLOADS = [
    ("uniform", ["--latency", "uniform"], False, None, 1.13),
    ("drift", ["--latency", "drift", "--drift-factor", "2", "--drift-from", "40"], False, None, 1.12),
    ("lognormal", ["--latency", "lognormal", "--lognormal-median", "30", "--lognormal-sigma", "0.35"], False, None, 1.26),
    ("bimodal", ["--latency", "bimodal", "--bimodal-slow", "35-50", "--bimodal-share", "0.5"], False, None, 1.17),
    ("webhook", ["--latency", "uniform"], True, None, 1.07),
    ("two models", ["--latency", "uniform"], False, [("seedream-5-0", "2K"), ("seedream-4-5", "4K")], None),
]


class Receiver:
    """A webhook endpoint that hands every delivery to the client."""

    def __init__(self):
        self.client = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    receiver.client.handle_webhook(body)
                except apixo.Error:
                    pass
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_once(n, scale, seed, extra, callback, models, policy):
    os.environ["APIXO_POLL_POLICY"] = policy
    sim = Sim(scale, seed, extra)
    receiver = Receiver() if callback else None
    try:
        lock = threading.Lock()
        done, errors = [], []  # (createTime ms, duration s) per completed task
        last = [0.0]

        def on_done(task, err):
            with lock:
                last[0] = time.monotonic()
                if err is not None or task is None:
                    errors.append(err)
                else:
                    done.append((task.create_time_ms, (task.complete_time_ms - task.create_time_ms) / 1000.0))

        coin = random.Random(seed)
        with apixo.Client(api_key="sk-sim", base_url=sim.base + "/api/v1", time_scale=scale) as c:
            if receiver:
                receiver.client = c
            start = time.monotonic()
            for i in range(n):
                kw = {"max_images": 1, "on_done": on_done}
                if models:
                    kw["model"], kw["resolution"] = models[coin.random() < 0.5]
                if receiver:
                    kw["callback_url"] = receiver.url
                c.submit("policy bench %d" % i, **kw)
            c.drain(timeout=3600)
        s = sim.stats()
        makespan = last[0] - start
        total = sum(d for _, d in done)
        slots = [0.0] * 10
        for _, d in sorted(done):
            heapq.heappush(slots, heapq.heappop(slots) + d)
        return {
            "ratio": makespan / (total / 10) if done else float("nan"),
            "bound": max(slots) / (total / 10) if done else float("nan"),
            "requests": sum(sum(s["requests"].get(e, {}).values()) for e in ("generateTask", "statusTask")),
            "r429": s["rate_limited"]["total"],
            "errors": len(errors),
            "done": len(done),
        }
    finally:
        if receiver:
            receiver.close()
        sim.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=100)
    p.add_argument("--time-scale", type=float, default=0.01)
    p.add_argument("--runs", type=int, default=10, help="runs (seeds) per workload and policy")
    p.add_argument("--only", default="", help="comma-separated workload names")
    p.add_argument("--policies", default="learned,ewma")
    a = p.parse_args()
    only = set(x.strip() for x in a.only.split(",") if x.strip())
    policies = [x.strip() for x in a.policies.split(",") if x.strip()]
    print("%d tasks, time scale %g, 60 rpm, 10 concurrent, mean of %d runs; ratio = makespan / "
          "(sum of durations / 10)" % (a.tasks, a.time_scale, a.runs))
    print()
    print("| workload | policy | ratio | min..max | zero-delay bound | req/task | 429s | errors | goal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, extra, callback, models, goal in WORKLOADS:
        if only and name not in only:
            continue
        for policy in policies:
            rs = [run_once(a.tasks, a.time_scale, 100 + k, extra, callback, models, policy) for k in range(a.runs)]
            ratios = [r["ratio"] for r in rs]
            mean = sum(ratios) / len(ratios)
            met = "" if goal is None else ("<= %.2f %s" % (goal, "met" if mean <= goal else "MISSED by %.3f" % (mean - goal)))
            print("| %s | %s | %.3f | %.3f..%.3f | %.3f | %.2f | %d | %d | %s |" % (
                name, policy, mean, min(ratios), max(ratios), sum(r["bound"] for r in rs) / len(rs),
                sum(r["requests"] for r in rs) / float(a.tasks * len(rs)), sum(r["r429"] for r in rs),
                sum(r["errors"] for r in rs), met if policy == "learned" else ""))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
