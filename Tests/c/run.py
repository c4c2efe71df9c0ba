#!/usr/bin/env python3
"""Runs the C test binaries against one apixo-sim.

    APIXO_SIM=sim/apixo_sim.py python3 Tests/c/run.py build/tests/test_a build/tests/test_b ...

Starts ONE simulator (--port 0 --time-scale 0.01 --small-images --seed 1), then runs each
binary in turn with APIXO_BASE_URL, APIXO_API_KEY=sk-sim, APIXO_SIM_URL and
APIXO_TIME_SCALE=0.01 in its environment, after resetting the simulator (POST /_sim/reset,
its default config, no queued faults). Each binary prints its own "N passed, N failed" as
its last line; a binary that exits non-zero, times out (APIXO_TEST_TIMEOUT seconds, default
120) or prints no such line counts as (at least) one failure.

With APIXO_VALGRIND=1 every binary runs under
    valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99
with Tests/c/valgrind.supp: only definite leaks and invalid accesses fail a binary; the leak
summary of each binary is printed. Timeouts are multiplied by 8 under valgrind.

Prints one result line per binary and a final "N passed, N failed" summed over all binaries;
exits non-zero on any failure. The simulator is always stopped.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TIME_SCALE = "0.01"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
RUNNING = []  # the test binary running now, to stop it if run.py is interrupted


def start_sim():
    sim = os.environ.get("APIXO_SIM") or os.path.join(ROOT, "sim", "apixo_sim.py")
    log = tempfile.NamedTemporaryFile(prefix="apixo-sim-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, sim, "--port", "0", "--time-scale", TIME_SCALE, "--small-images",
         "--seed", "1"],
        stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    line = proc.stdout.readline().strip()
    prefix = "apixo-sim listening on "
    if not line.startswith(prefix):
        proc.kill()
        raise SystemExit("run.py: the simulator did not start: %r (log %s)" % (line, log.name))
    # keep draining stdout so the simulator never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, line[len(prefix):], log.name


def stop_sim(proc):
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def sim_call(root, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(root + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read())


def reset_sim(root):
    sim_call(root, "POST", "/_sim/reset", {})
    sim_call(root, "POST", "/_sim/config", {"rpm": 60, "concurrency": 10})
    sim_call(root, "DELETE", "/_sim/faults")


def valgrind_prefix(logfile):
    supp = os.path.join(HERE, "valgrind.supp")
    cmd = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite",
           "--show-leak-kinds=definite", "--error-exitcode=99", "--num-callers=40",
           "--log-file=" + logfile]
    if os.path.exists(supp):
        cmd.append("--suppressions=" + supp)
    return cmd


def leak_summary(logfile):
    """The lines of a valgrind log that matter in a report."""
    keep = []
    try:
        with open(logfile, errors="replace") as f:
            for line in f:
                text = line.split("== ", 1)[-1].rstrip()
                if re.search(r"(definitely|indirectly|possibly) lost:|still reachable:|"
                             r"ERROR SUMMARY:|Invalid (read|write|free)|uninitialised|"
                             r"Mismatched free|Syscall param", text):
                    keep.append(text.strip())
    except OSError:
        keep.append("(no valgrind log)")
    return keep


def run_binary(path, env, timeout, use_valgrind):
    name = os.path.basename(path)
    cmd = [path]
    vlog = None
    if use_valgrind:
        vlog = tempfile.NamedTemporaryFile(prefix="vg-%s-" % name, suffix=".log",
                                           delete=False).name
        cmd = valgrind_prefix(vlog) + cmd
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                text=True, errors="replace", start_new_session=True)
    except OSError as e:
        return name, 0, 1, 0.0, ["cannot run: %s" % e], [], None
    RUNNING.append(proc)
    timed_out = [False]

    def on_timeout():
        timed_out[0] = True
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, on_timeout)
    timer.start()
    last_summary = None
    try:
        for line in proc.stdout:
            sys.stdout.write("  " + line)
            sys.stdout.flush()
            m = SUMMARY.match(line.strip())
            if m:
                last_summary = (int(m.group(1)), int(m.group(2)))
        proc.wait()
    finally:
        timer.cancel()
        RUNNING.remove(proc)
    elapsed = time.monotonic() - t0
    passed, failed = last_summary if last_summary else (0, 0)
    problems = []
    if timed_out[0]:
        problems.append("timed out after %d s" % timeout)
    if last_summary is None:
        problems.append("no 'N passed, N failed' line")
    if proc.returncode == 99 and use_valgrind:
        problems.append("valgrind reported errors (exit 99)")
    elif proc.returncode != 0:
        problems.append("exit status %s" % proc.returncode)
    if problems and failed == 0:
        failed = 1
    vg = leak_summary(vlog) if vlog else []
    return name, passed, failed, elapsed, problems, vg, vlog


def stop_running():
    for proc in list(RUNNING):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def on_sigterm(signum, frame):
    raise SystemExit("run.py: terminated (signal %d)" % signum)


def main(argv):
    signal.signal(signal.SIGTERM, on_sigterm)
    binaries = [a for a in argv[1:] if not a.startswith("-")]
    if not binaries:
        print("usage: run.py TEST_BINARY...", file=sys.stderr)
        return 2
    use_valgrind = os.environ.get("APIXO_VALGRIND", "") not in ("", "0")
    timeout = float(os.environ.get("APIXO_TEST_TIMEOUT", "120")) * (8 if use_valgrind else 1)
    proc, root, simlog = start_sim()
    results = []
    t_all = time.monotonic()
    try:
        print("apixo-sim at %s (time scale %s, log %s)%s" %
              (root, TIME_SCALE, simlog, " under valgrind" if use_valgrind else ""), flush=True)
        for path in binaries:
            env = dict(os.environ, APIXO_BASE_URL=root + "/api/v1", APIXO_API_KEY="sk-sim",
                       APIXO_SIM_URL=root, APIXO_TIME_SCALE=TIME_SCALE,
                       APIXO_TEST_BINDIR=os.path.dirname(os.path.abspath(path)))
            try:
                reset_sim(root)
            except Exception as e:  # the simulator died: every further binary fails
                results.append((os.path.basename(path), 0, 1, 0.0,
                                ["simulator unreachable: %s" % e], [], None))
                continue
            print("--- %s" % os.path.basename(path), flush=True)
            r = run_binary(path, env, timeout, use_valgrind)
            results.append(r)
            name, passed, failed, elapsed, problems, vg, vlog = r
            print("--- %s: %d passed, %d failed (%.1f s)%s" %
                  (name, passed, failed, elapsed,
                   "; " + "; ".join(problems) if problems else ""), flush=True)
            for line in vg:
                print("    valgrind: " + line)
            if vlog and not problems:
                os.unlink(vlog)
            elif vlog:
                print("    valgrind log kept: " + vlog)
    finally:
        stop_running()
        stop_sim(proc)
    total_p = sum(r[1] for r in results)
    total_f = sum(r[2] for r in results)
    print()
    print("C test results (%.1f s):" % (time.monotonic() - t_all))
    for name, passed, failed, elapsed, problems, vg, _ in results:
        print("  %-22s %4d passed %3d failed %6.1f s%s" %
              (name, passed, failed, elapsed, "  " + "; ".join(problems) if problems else ""))
    print("%d passed, %d failed" % (total_p, total_f))
    if total_f == 0:
        os.unlink(simlog)
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
