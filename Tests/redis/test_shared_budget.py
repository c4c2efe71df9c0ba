"""Many processes, one account: the shared budget on Redis, end to end.

Each test starts its own redis-server (Debian's) and apixo-sim on free loopback ports with the
account's limits (60 requests a minute, 10 concurrent tasks, time-scaled), runs worker
processes (Tests/redis/worker.c, built by `make test-redis`) and judges by the simulator's
counters: 429s, tasks created, submits per prompt.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

from redis_harness import Redis

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIM = os.path.join(ROOT, "sim", "apixo_sim.py")
WORKER = os.environ.get("APIXO_REDIS_WORKER") or os.path.join(ROOT, "build", "tests", "redis_worker")
SCALE = "0.02"
KEY = "sk-sim"


class Sim:
    def __init__(self):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, SIM, "--port", "0", "--time-scale", SCALE, "--small-images", "--seed", "5"],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        assert line.startswith("apixo-sim listening on "), line
        self.url = line.split()[-1]
        self.api = self.url + "/api/v1"

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=20) as r:
            return json.loads(r.read())["data"]

    def reset(self):
        self.call("POST", "/_sim/reset", {})
        self.call("POST", "/_sim/config", {"rpm": 60, "concurrency": 10})

    def stats(self):
        return self.call("GET", "/_sim/stats")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sim():
    if not os.access(WORKER, os.X_OK):
        pytest.fail("worker not built: %s (make test-redis builds it)" % WORKER)
    s = Sim()
    yield s
    s.stop()


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()


def start_workers(sim, n_procs, n_tasks, prefix, shared=None, journals=None):
    env = dict(os.environ, APIXO_API_KEY=KEY, APIXO_TIME_SCALE=SCALE)
    env.pop("APIXO_SHARED_BUDGET", None)
    procs = []
    for i in range(n_procs):
        args = [WORKER, sim.api, str(n_tasks), "%s%d" % (prefix, i)]
        if shared:
            args += ["--shared", shared]
        if journals:
            args += ["--journal", journals[i]]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    return procs


def finish(procs, timeout=300):
    out = []
    for p in procs:
        o, e = p.communicate(timeout=timeout)
        lines = [json.loads(l) for l in o.splitlines() if l.startswith("{")]
        out.append((p.returncode, lines, e))
    return out


def run(sim, n_procs, n_tasks, prefix, shared=None):
    sim.reset()
    t0 = time.monotonic()
    results = finish(start_workers(sim, n_procs, n_tasks, prefix, shared))
    return time.monotonic() - t0, results, sim.stats()


def rate_limited(stats):
    return stats["rate_limited"]["total"]


def test_four_processes_share_one_account(sim, redis):
    t4, results, stats = run(sim, 4, 25, "four", shared=redis.url)
    for rc, lines, err in results:
        assert rc == 0, err
        assert lines[-1]["ok"] == 25, lines[-1]
    assert rate_limited(stats) == 0, stats["rate_limited"]
    assert stats["tasks_created"] == 100
    assert sum(stats["submits_by_prompt"].values()) == 100
    assert set(stats["submits_by_prompt"].values()) == {1}, "each task submitted once"
    assert stats["peak_concurrent_tasks"] <= 10

    t1, results, stats = run(sim, 1, 100, "alone", shared=redis.url)
    assert results[0][0] == 0 and rate_limited(stats) == 0
    print("makespan: 4 processes x 25: %.2f s; 1 process x 100: %.2f s; ratio %.3f" % (t4, t1, t4 / t1))
    assert t4 <= 1.15 * t1, "4 x 25 took %.2f s, 1 x 100 took %.2f s" % (t4, t1)

    # The control: the same four processes each on a budget of their own draw 429s.
    _, results, stats = run(sim, 4, 25, "control")
    assert rate_limited(stats) > 0, "four local budgets on one key must overrun the account"


def test_a_killed_process_gives_its_slots_back_and_resumes(sim, redis, tmp_path):
    sim.reset()
    journals = [str(tmp_path / ("j%d" % i)) for i in range(4)]
    procs = start_workers(sim, 4, 25, "kill", shared=redis.url, journals=journals)
    time.sleep(1.5)
    procs[0].send_signal(signal.SIGKILL)
    results = finish(procs[1:])
    for rc, lines, err in results:
        assert rc == 0, err
    procs[0].wait()
    stats = sim.stats()
    assert rate_limited(stats) == 0, stats["rate_limited"]

    # Its journal resumes its tasks in a new process, on the shared budget too.
    env = dict(os.environ, APIXO_API_KEY=KEY, APIXO_TIME_SCALE=SCALE)
    p = subprocess.run([WORKER, sim.api, "0", "kill0", "--shared", redis.url, "--journal", journals[0], "--resume"],
                       capture_output=True, text=True, env=env, timeout=300)
    lines = [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")]
    done = [l for l in lines if l["event"] == "done"]
    assert p.returncode in (0, 1), p.stderr
    # Every task of the killed process that was sent ends in a real outcome or, for a submit
    # whose answer was lost in the kill, INDETERMINATE: never resubmitted.
    assert all(l["code"] in ("APIXO_OK", "APIXO_ERR_INDETERMINATE") for l in done), done
    stats = sim.stats()
    assert rate_limited(stats) == 0, stats["rate_limited"]
    assert max(stats["submits_by_prompt"].values()) == 1, "nothing submitted twice"


def test_redis_outage_is_survived(sim, redis):
    sim.reset()
    procs = start_workers(sim, 4, 25, "outage", shared=redis.url)
    time.sleep(1.5)
    redis.stop()
    time.sleep(1.5)
    redis.start()
    results = finish(procs)
    for rc, lines, err in results:
        assert rc == 0, err
        assert lines[-1]["ok"] == 25
        assert "going on with a local share" in err, err
        assert "reachable again" in err, err
    stats = sim.stats()
    assert rate_limited(stats) == 0, stats["rate_limited"]
    assert set(stats["submits_by_prompt"].values()) == {1}
