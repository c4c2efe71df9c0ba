#!/usr/bin/env python3
"""The FFI hosts of issue #10: each examples/<host>/ program, built once, run RUNS times.

Hosts: cpp (g++), rust (rustc), go (cgo), python-cffi (cffi ABI mode) with callbacks on the
dispatcher thread; ruby (Fiddle), luajit (ffi), perl (FFI::Platypus) and node (an N-API addon,
cc against /usr/include/node or $NODE_INCLUDE) in queue delivery mode.

    python3 Tests/hosts/run.py [HOST...]          (default: every host; make test-hosts)

Starts ONE simulator (the one Tests/c/run.py starts: --time-scale 0.01 --small-images), builds
each host's example into build/hosts/<host>/ (compilers and interpreters must be installed:
a missing one is a failure, not a skip), then runs it RUNS times (default 10, env
APIXO_HOST_RUNS), resetting the simulator before each run. A run passes when the program
  - exits 0 within APIXO_HOST_TIMEOUT seconds (default 60) and is not killed by a signal,
  - prints exactly three lines "task I id=ID state=success urls=N" with I = 0, 1, 2, N >= 1
    and three distinct non-empty ids, and a last line "completed 3/3",
  - and the simulator counted exactly 3 tasks created, all in state success (so the program
    did talk to it).
Hosts with extra checks (node: `node --test test.js`, the Promise API's own assertions) run
them once.
Prints one line per host and a final "N passed, N failed" (one count per run and per check);
exits non-zero on any failure. The simulator is always stopped.
"""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")
LIBDIR = os.path.join(BUILD, "lib")
INCLUDE = os.path.join(BUILD, "include")
EX = os.path.join(ROOT, "examples")
OUT = os.path.join(BUILD, "hosts")
RUNS = int(os.environ.get("APIXO_HOST_RUNS", "10"))
TIMEOUT = float(os.environ.get("APIXO_HOST_TIMEOUT", "60"))
TASK_LINE = re.compile(r"^task (\d+) id=(\S+) state=(\S+) urls=(\d+)$")

_spec = importlib.util.spec_from_file_location("c_run", os.path.join(ROOT, "Tests", "c", "run.py"))
c_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(c_run)  # start_sim, stop_sim, reset_sim, sim_call: one simulator set-up


def out(host, *names):
    return os.path.join(OUT, host, *names)


def go_env():
    # Go's caches inside build/ (CI runs as root with no usable $HOME cache); no module proxy:
    # the example uses the standard library only.
    return {"GOCACHE": out("go", "cache"), "GOPATH": out("go", "gopath"), "GOFLAGS": "",
            "GO111MODULE": "on", "GOPROXY": "off", "GOTOOLCHAIN": "local",
            "PKG_CONFIG_PATH": os.path.join(LIBDIR, "pkgconfig")}


NODE_INCLUDE = os.environ.get("NODE_INCLUDE", "/usr/include/node")  # node's headers (node_api.h, uv.h)
ADDON = out("node", "apixo.node")


def host(build=(), run=(), env=None, checks=()):
    """build: [(argv, cwd, extra env)] run once; run: the three-task program's argv, run RUNS
    times with env added; checks: [(name, argv)] run once each, passing on exit status 0."""
    return {"build": list(build), "run": list(run), "env": env or {}, "checks": list(checks)}


LIBAPIXO = {"APIXO_LIBRARY": os.path.join(LIBDIR, "libapixo.so")}

HOSTS = {
    "cpp": host(
        build=[(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2", "-I" + INCLUDE,
                 os.path.join(EX, "cpp", "three_tasks.cpp"), "-o", out("cpp", "three_tasks"),
                 "-L" + LIBDIR, "-Wl,-rpath," + LIBDIR, "-lapixo"], None, {})],
        run=[out("cpp", "three_tasks")]),
    "rust": host(
        build=[(["rustc", "--edition", "2021", "-O", "-D", "warnings",
                 os.path.join(EX, "rust", "three_tasks.rs"), "-o", out("rust", "three_tasks"),
                 "-L", LIBDIR, "-C", "link-arg=-Wl,-rpath," + LIBDIR], None, {})],
        run=[out("rust", "three_tasks")]),
    "go": host(
        build=[(["go", "vet", "."], os.path.join(EX, "go"), go_env()),
               (["go", "build", "-o", out("go", "threetasks"), "."], os.path.join(EX, "go"),
                go_env())],
        run=[out("go", "threetasks")]),
    "python-cffi": host(
        run=[sys.executable, os.path.join(EX, "python-cffi", "three_tasks.py")], env=LIBAPIXO),
    "ruby": host(
        run=["ruby", "-w", os.path.join(EX, "ruby", "three_tasks.rb")], env=LIBAPIXO),
    "luajit": host(
        run=["luajit", os.path.join(EX, "luajit", "three_tasks.lua")], env=LIBAPIXO),
    "perl": host(
        run=["perl", os.path.join(EX, "perl", "three_tasks.pl")], env=LIBAPIXO),
    "node": host(
        build=[(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror",
                 "-I" + NODE_INCLUDE, "-I" + INCLUDE, os.path.join(EX, "node", "apixo_addon.c"),
                 "-o", ADDON, "-L" + LIBDIR, "-Wl,-rpath," + LIBDIR, "-lapixo"], None, {})],
        run=["node", os.path.join(EX, "node", "three_tasks.js")], env={"APIXO_ADDON": ADDON},
        checks=[("node --test test.js", ["node", "--test", os.path.join(EX, "node", "test.js")])]),
}


def run_cmd(argv, cwd=None, env=None, timeout=TIMEOUT):
    """(returncode or None on timeout, combined output)."""
    try:
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace",
                             start_new_session=True)
    except OSError as e:
        return -1, "cannot run %s: %s" % (argv[0], e)
    try:
        text, _ = p.communicate(timeout=timeout)
        return p.returncode, text
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        text, _ = p.communicate()
        return None, text + "\n(timed out after %d s)" % timeout


def check_output(rc, text):
    """The problems of one run of the three-task program (empty: it passed)."""
    problems = []
    if rc is None:
        problems.append("timed out")
    elif rc < 0:
        problems.append("killed by signal %d" % -rc)
    elif rc != 0:
        problems.append("exit status %d" % rc)
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    tasks = [TASK_LINE.match(l) for l in lines]
    tasks = [m for m in tasks if m]
    if sorted(int(m.group(1)) for m in tasks) != [0, 1, 2]:
        problems.append("task lines for %s, want 0 1 2" % [m.group(1) for m in tasks])
    if any(m.group(3) != "success" for m in tasks):
        problems.append("states %s" % [m.group(3) for m in tasks])
    if any(int(m.group(4)) < 1 for m in tasks):
        problems.append("url counts %s" % [m.group(4) for m in tasks])
    ids = {m.group(2) for m in tasks}
    if len(ids) != len(tasks) or "" in ids:
        problems.append("ids not distinct: %s" % sorted(ids))
    if not lines or lines[-1] != "completed 3/3":
        problems.append("last line %r, want 'completed 3/3'" % (lines[-1] if lines else ""))
    return problems


def check_sim(root):
    stats = c_run.sim_call(root, "GET", "/_sim/stats")["data"]
    problems = []
    if stats["tasks_created"] != 3:
        problems.append("simulator created %d tasks, want 3" % stats["tasks_created"])
    if stats["tasks_by_state"]["success"] != stats["tasks_created"]:
        problems.append("simulator states %s" % stats["tasks_by_state"])
    return problems


def build(host, steps):
    os.makedirs(out(host), exist_ok=True)
    t0 = time.monotonic()
    for argv, cwd, extra in steps:
        rc, text = run_cmd(argv, cwd=cwd, env=dict(os.environ, **extra), timeout=300)
        if rc != 0:
            return None, "build step %s failed (%s):\n%s" % (" ".join(argv[:2]), rc, text)
    return time.monotonic() - t0, ""


def main(argv):
    signal.signal(signal.SIGTERM, c_run.on_sigterm)
    wanted = [a for a in argv[1:] if not a.startswith("-")] or list(HOSTS)
    unknown = [h for h in wanted if h not in HOSTS]
    if unknown:
        print("run.py: unknown host(s) %s; known: %s" % (unknown, " ".join(HOSTS)), file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(LIBDIR, "libapixo.so")):
        print("run.py: build/lib/libapixo.so is missing: run make first", file=sys.stderr)
        return 2
    sim, root, simlog = c_run.start_sim()
    passed = failed = 0
    summary = []
    t_all = time.monotonic()
    try:
        print("apixo-sim at %s (time scale %s, log %s); %d runs per host" %
              (root, c_run.TIME_SCALE, simlog, RUNS), flush=True)
        env = dict(os.environ, APIXO_BASE_URL=root + "/api/v1", APIXO_API_KEY="sk-sim",
                   APIXO_TIME_SCALE=c_run.TIME_SCALE)
        for host in wanted:
            h = HOSTS[host]
            cmd, extra = h["run"], h["env"]
            built, why = build(host, h["build"])
            if built is None:
                print("FAIL %s: %s" % (host, why), flush=True)
                failed += 1
                summary.append("FAIL %-12s build failed" % host)
                continue
            ok = 0
            t0 = time.monotonic()
            for i in range(RUNS):
                c_run.reset_sim(root)
                rc, text = run_cmd(cmd, env=dict(env, **extra))
                problems = check_output(rc, text)
                if not problems:
                    problems = check_sim(root)
                if problems:
                    failed += 1
                    print("FAIL %s run %d: %s\n%s" % (host, i + 1, "; ".join(problems),
                                                      "".join("  | " + l + "\n"
                                                              for l in text.splitlines())),
                          flush=True)
                else:
                    ok += 1
                    passed += 1
                    if i == 0:
                        print("".join("  %s | %s\n" % (host, l) for l in text.splitlines()),
                              end="", flush=True)
            line = "%s %-12s %2d/%d runs ok  (build %.1f s, runs %.1f s)" % (
                "ok  " if ok == RUNS else "FAIL", host, ok, RUNS, built, time.monotonic() - t0)
            summary.append(line)
            print(line, flush=True)
            for name, argv in h["checks"]:
                c_run.reset_sim(root)
                rc, text = run_cmd(argv, env=dict(env, **extra), timeout=TIMEOUT * 2)
                good = rc == 0
                passed += good
                failed += not good
                line = "%s %-12s %s (exit %s)" % ("ok  " if good else "FAIL", host, name, rc)
                if not good:
                    print("".join("  | " + l + "\n" for l in text.splitlines()), end="")
                summary.append(line)
                print(line, flush=True)
    finally:
        c_run.stop_sim(sim)
    print("--- hosts (%.1f s)" % (time.monotonic() - t_all))
    for line in summary:
        print(line)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
