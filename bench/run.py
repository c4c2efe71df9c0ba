#!/usr/bin/env python3
"""apixo benchmarks: what the library gets out of an account's limits, against apixo-sim.

    python3 bench/run.py [--tasks 60] [--time-scale 0.05] [--skip-naive]

Scenarios (each against a fresh simulator with the account's documented limits, 60 requests
per minute and 10 concurrent tasks, on a scaled clock):
  library  N tasks through libapixo (submit with on_done, then drain), default options.
  naive    the same N tasks the way APIXO's docs suggest, with no budgeting: submit up to the
           concurrency cap, wait 20 s, poll every 3 s, on 429 wait Retry-After and retry.
  idle     CPU used by a process holding an idle client for 5 s.
  memory   resident memory of a process while one client tracks 1000 tasks at once
           (limits off on both sides), per task.
Times are reported in real API seconds (measured seconds divided by the time scale).
Results are printed as a Markdown table, for BENCHMARKS.md.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
os.environ.setdefault("APIXO_LIBRARY", os.path.join(ROOT, "build", "lib", "libapixo.so"))
import apixo  # noqa: E402


class Sim:
    """A fresh simulator with the account's documented limits; `extra`: more options."""

    def __init__(self, scale, seed=11, extra=()):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "sim", "apixo_sim.py"), "--port", "0",
                                      "--time-scale", str(scale), "--small-images", "--seed", str(seed)] + list(extra),
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        self.base = line.split("listening on ", 1)[1]

    def stats(self):
        with urllib.request.urlopen(self.base + "/_sim/stats") as r:
            return json.loads(r.read())["data"]

    def close(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def summary(name, sim, n, elapsed, scale, extra=""):
    s = sim.stats()
    real = elapsed / scale
    return {
        "scenario": name,
        "tasks": n,
        "done": s["tasks_by_state"]["success"] + s["tasks_by_state"]["failed"],
        "wall (API s)": round(real, 1),
        "tasks/min": round(n / real * 60, 1),
        "requests": s["requests_total"],
        "polls/task": round(s["polls_total"] / max(1, n), 2),
        "429s": s["rate_limited"]["total"],
        "peak tasks": s["peak_concurrent_tasks"],
        "note": extra,
    }


def run_library(n, scale):
    sim = Sim(scale)
    try:
        done = []
        lock = threading.Lock()
        lat = []

        def on_done(task, err):
            with lock:
                done.append(err is None)
                if task is not None and task.complete_time_ms:
                    lat.append(time.time() * 1000 - task.complete_time_ms)

        with apixo.Client(api_key="sk-sim", base_url=sim.base + "/api/v1", time_scale=scale) as c:
            start = time.monotonic()
            for i in range(n):
                c.submit("bench library %d" % i, max_images=1, on_done=on_done)
            c.drain(timeout=3600)
            elapsed = time.monotonic() - start
        detect = sum(lat) / len(lat) / scale / 1000 if lat else 0
        return summary("library", sim, n, elapsed, scale,
                       "mean delay completion->callback %.1f API s" % detect)
    finally:
        sim.close()


def run_naive(n, scale):
    """APIXO's advice without a budget: 10 in flight, wait 20 s, poll every 3 s."""
    sim = Sim(scale)
    base = sim.base + "/api/v1"
    hdr = {"Authorization": "Bearer sk-sim", "Content-Type": "application/json"}

    def call(method, url, body=None):
        while True:
            req = urllib.request.Request(url, data=body, headers=hdr, method=method)
            try:
                with urllib.request.urlopen(req) as r:
                    return json.loads(r.read())
            except urllib.error.HTTPError as e:
                if e.code == 429:
                    time.sleep(float(e.headers.get("X-Sim-Retry-After-Ms", "1000")) / 1000)
                    continue
                raise

    def worker(prompts):
        for p in prompts:
            body = json.dumps({"request_type": "async", "input": {"prompt": p, "max_images": 1}}).encode()
            tid = call("POST", base + "/generateTask/seedream-5-0", body)["data"]["taskId"]
            time.sleep(20 * scale)
            while True:
                st = call("GET", base + "/statusTask/seedream-5-0?taskId=" + tid)["data"]["state"]
                if st in ("success", "failed"):
                    break
                time.sleep(3 * scale)

    try:
        prompts = ["bench naive %d" % i for i in range(n)]
        shards = [prompts[i::10] for i in range(10)]
        start = time.monotonic()
        ts = [threading.Thread(target=worker, args=(s,)) for s in shards]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.monotonic() - start
        return summary("naive (docs' advice)", sim, n, elapsed, scale)
    finally:
        sim.close()


def run_idle(seconds=5.0):
    sim = Sim(1.0)
    try:
        with apixo.Client(api_key="sk-sim", base_url=sim.base + "/api/v1"):
            before = resource.getrusage(resource.RUSAGE_SELF)
            time.sleep(seconds)
            after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return cpu, seconds
    finally:
        sim.close()


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_memory(n=1000, scale=0.05):
    sim = Sim(scale)
    try:
        req = urllib.request.Request(sim.base + "/_sim/config", data=json.dumps({"rpm": 0, "concurrency": 0}).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        with apixo.Client(api_key="sk-sim", base_url=sim.base + "/api/v1", time_scale=scale,
                          requests_per_minute=0, max_concurrent_tasks=0) as c:
            before = rss_kb()
            done = threading.Event()
            count = [0]
            lock = threading.Lock()

            def on_done(task, err):
                with lock:
                    count[0] += 1
                    if count[0] == n:
                        done.set()

            for i in range(n):
                c.submit("bench memory %d" % i, max_images=1, on_done=on_done)
            peak = before
            while not done.wait(0.05):
                peak = max(peak, rss_kb())
            c.drain(timeout=600)
            after = rss_kb()
        return before, peak, after, n
    finally:
        sim.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=60)
    p.add_argument("--time-scale", type=float, default=0.05)
    p.add_argument("--skip-naive", action="store_true")
    a = p.parse_args()
    rows = [run_library(a.tasks, a.time_scale)]
    if not a.skip_naive:
        rows.append(run_naive(a.tasks, a.time_scale))
    cols = list(rows[0].keys())
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    cpu, secs = run_idle()
    print()
    print("idle client: %.3f s CPU over %.0f s wall (%.2f%% of one core)" % (cpu, secs, 100 * cpu / secs))
    before, peak, after, n = run_memory()
    print("memory: %d tasks tracked at once: RSS %d KB before, %d KB at peak (+%.1f KB per task), %d KB after"
          % (n, before, peak, (peak - before) / n, after))


if __name__ == "__main__":
    main()
