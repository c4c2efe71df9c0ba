#!/usr/bin/env python3
"""apixo at scale and the shipped library's weight (issue #14).

    python3 bench/scale.py [--sizes 1000,10000,100000] [--runs 21]

- CPU per task: bench/scale.c watches N finished tasks with the limits off against
  bench/fastserver.py (keep-alive, answers at once) and reads getrusage for its own process.
- Memory per tracked task: N tasks that never end, watched under the account's limits
  (60 rpm, 10 tasks), heap (mallinfo2) and RSS before and after.
- The library: size of build/lib/libapixo.so (stripped) and its separate debug file; dlopen
  plus dlsym of every apixo_ function of the header, median of --runs fresh processes.
Prints Markdown for BENCHMARKS.md. Needs `make` first (build/lib, build/include).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
LIB = os.path.join(BUILD, "lib", "libapixo.so")


def compile_tool(name):
    out = os.path.join(BUILD, "bench", name)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    subprocess.run(["cc", "-std=c11", "-O2", "-Wall", "-I" + os.path.join(BUILD, "include"),
                    os.path.join(ROOT, "bench", name + ".c"), "-o", out,
                    "-L" + os.path.join(BUILD, "lib"), "-Wl,-rpath," + os.path.join(BUILD, "lib"),
                    "-lapixo", "-ldl", "-lpthread"], check=True)
    return out


def kv(line):
    return dict(p.split("=", 1) for p in line.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    scale, dl = compile_tool("scale"), compile_tool("dlopen")
    srv = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "fastserver.py")],
                           stdout=subprocess.PIPE, text=True)
    try:
        base = srv.stdout.readline().split("listening on ", 1)[1].strip() + "/api/v1"
        print("| tasks (watch, limits off) | CPU s | wall s | CPU µs per task |")
        print("|---|---|---|---|")
        per = []
        for n in [int(x) for x in args.sizes.split(",")]:
            r = kv(subprocess.run([scale, base, "cpu", str(n)], check=True, capture_output=True,
                                  text=True, timeout=900).stdout)
            assert r["fired"] == r["tasks"], r
            per.append(float(r["cpu_us_per_task"]))
            print("| %s | %s | %s | %s |" % (n, r["cpu_s"], r["wall_s"], r["cpu_us_per_task"]))
        print("\nCPU per task, largest over smallest size: %.2f\n" % (per[-1] / per[0]))
        print("| tracked tasks (limits on) | heap bytes per task | RSS before KB | RSS after KB | RSS bytes per task |")
        print("|---|---|---|---|---|")
        for n in (1000, 10000):
            r = kv(subprocess.run([scale, base, "mem", str(n)], check=True, capture_output=True,
                                  text=True, timeout=300).stdout)
            assert r["tracked"] == r["tasks"], r
            print("| %s | %s | %s | %s | %s |" % (n, r["heap_bytes_per_task"], r["rss_kb_before"],
                                                r["rss_kb_after"], r["rss_bytes_per_task"]))
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    header = open(os.path.join(ROOT, "include", "apixo.h")).read()
    names = sorted(set(re.findall(r"\b(apixo_[a-z0-9_]+)\s*\(", header)) - {"apixo_task_callback", "apixo_log_fn"})
    exports = subprocess.run(["nm", "-D", "--defined-only", LIB], capture_output=True, text=True).stdout
    names = [n for n in names if re.search(r"\b%s(@\S*)?$" % n, exports, re.M)]
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                        subprocess.run(["readelf", "-d", LIB], capture_output=True, text=True).stdout)
    deps = [d for d in needed if not d.startswith(("libc.so", "libm.so", "libgcc_s", "ld-linux"))]
    cold, warm, dep_ms = [], [], []
    for _ in range(args.runs):
        for into, extra in ((cold, []), (warm, deps)):
            out = subprocess.run([dl, LIB] + extra, input="\n".join(names), capture_output=True, text=True,
                                 check=True).stdout.split()
            into.append(float(out[1]))
            if extra:
                dep_ms.append(float(out[0]))
            assert out[2] == str(len(names)) and out[3] == "0", out
    debug = LIB + ".debug"
    print("\n| library | size |")
    print("|---|---|")
    print("| build/lib/libapixo.so | %.2f MB |" % (os.path.getsize(LIB) / 1e6))
    if os.path.exists(debug):
        print("| build/lib/libapixo.so.debug | %.2f MB |" % (os.path.getsize(debug) / 1e6))
    print("\ndlopen + dlsym of all %d apixo_ functions, median of %d fresh processes:" % (len(names), args.runs))
    print("- cold (the library and every system library it needs): %.2f ms (min %.2f, max %.2f)"
          % (statistics.median(cold), min(cold), max(cold)))
    print("- the library alone, its direct dependencies (%s) loaded first: %.2f ms (min %.2f, max %.2f);"
          " those dependencies took %.2f ms" % (", ".join(deps), statistics.median(warm), min(warm), max(warm),
                                               statistics.median(dep_ms)))


if __name__ == "__main__":
    main()
