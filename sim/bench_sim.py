#!/usr/bin/env python3
"""Measure how many statusTask requests per second apixo-sim answers.

    python3 sim/bench_sim.py [--seconds 5] [--connections 8] [--processes 2] [--url URL]

Without --url it starts its own simulator (`--rpm 0 --concurrency 0 --small-images`) on a free
loopback port and stops it at the end. Several keep-alive connections (http.client, one thread
each) spread over a few client processes poll one finished task for the given time; the figure
is the total of 200 answers divided by the elapsed time. Standard library only.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))


def _worker(host, port, path, key, seconds, n_threads, start_at, out_q):
    counts = []
    lat = []
    lock = threading.Lock()

    def run():
        ok = err = 0
        mine = []
        conn = http.client.HTTPConnection(host, port, timeout=10)
        headers = {"Authorization": "Bearer " + key}
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while True:
            t0 = time.perf_counter()
            if time.time() >= deadline:
                break
            try:
                conn.request("GET", path, headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    ok += 1
                else:
                    err += 1
            except (OSError, http.client.HTTPException):
                err += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            if len(mine) < 20000:
                mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            counts.append((ok, err))
            lat.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out_q.put((sum(c[0] for c in counts), sum(c[1] for c in counts), lat))


def start_sim():
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "apixo_sim.py"), "--rpm", "0",
                             "--concurrency", "0", "--time-scale", "0.001", "--small-images"],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    prefix = "apixo-sim listening on "
    if not line.startswith(prefix):
        proc.kill()
        sys.exit("apixo-sim did not start: %r" % line)
    return proc, line[len(prefix):].strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="an already running sim (started with --rpm 0)")
    ap.add_argument("--key", default="sk-sim")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args()
    if args.connections < 1 or args.processes < 1 or args.seconds <= 0:
        ap.error("--connections, --processes and --seconds must be positive")
    procs = min(args.processes, args.connections)

    sim_proc = None
    url = args.url
    if url is None:
        sim_proc, url = start_sim()
    try:
        u = urllib.parse.urlsplit(url)
        host, port = u.hostname, u.port
        c = http.client.HTTPConnection(host, port, timeout=10)
        body = json.dumps({"input": {"prompt": "bench", "max_images": 1}})
        c.request("POST", "/api/v1/generateTask/seedream-5-0", body=body,
                  headers={"Authorization": "Bearer " + args.key,
                           "Content-Type": "application/json"})
        r = c.getresponse()
        data = json.loads(r.read())
        if r.status != 200:
            sys.exit("submit failed: %r" % data)
        task_id = data["data"]["taskId"]
        path = "/api/v1/statusTask/seedream-5-0?taskId=" + task_id
        deadline = time.time() + 120
        while True:                                   # poll the task to its end first
            c.request("GET", path, headers={"Authorization": "Bearer " + args.key})
            state = json.loads(c.getresponse().read())["data"]["state"]
            if state in ("success", "failed") or time.time() > deadline:
                break
            time.sleep(0.05)
        c.close()

        ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        q = ctx.Queue()
        start_at = time.time() + 0.5
        per = [args.connections // procs + (1 if i < args.connections % procs else 0)
               for i in range(procs)]
        workers = [ctx.Process(target=_worker, args=(host, port, path, args.key, args.seconds,
                                                     n, start_at, q)) for n in per]
        for w in workers:
            w.start()
        results = [q.get(timeout=args.seconds + 60) for _ in workers]
        for w in workers:
            w.join()
        ok = sum(r[0] for r in results)
        err = sum(r[1] for r in results)
        lat = sorted(x for r in results for x in r[2])
        rate = ok / args.seconds
        p50 = lat[len(lat) // 2] * 1000 if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
        print("status requests/s: %.0f  (%d ok, %d errors, %d keep-alive connections in %d "
              "client processes, %.1f s; latency p50 %.2f ms, p99 %.2f ms)"
              % (rate, ok, err, args.connections, procs, args.seconds, p50, p99))
        return 0 if err == 0 else 1
    finally:
        if sim_proc is not None:
            sim_proc.send_signal(signal.SIGTERM)
            try:
                sim_proc.wait(10)
            except subprocess.TimeoutExpired:
                sim_proc.kill()


if __name__ == "__main__":
    sys.exit(main())
