"""Fixtures: the real `apixo` binary (APIXO_CLI) against apixo-sim, a real subprocess on port 0."""

import json
import os
import pty
import re
import select
import selectors
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SIM_SCRIPT = os.path.join(ROOT, "sim", "apixo_sim.py")
BANNER = re.compile(r"^apixo-sim listening on (http://[^\s]+)\n$")
KEY = "sk-sim"
SCALE = 0.01
# What the shared simulator is reset to before every test: the documented limits.
BASE_CONFIG = {"rpm": 60, "concurrency": 10, "time_scale": SCALE, "small_images": True}


def cli_path():
    path = os.environ.get("APIXO_CLI") or os.path.join(ROOT, "build", "bin", "apixo")
    if not os.access(path, os.X_OK):
        pytest.exit("apixo CLI not found at %s: build it (make) or set APIXO_CLI" % path, returncode=2)
    return path


class Sim:
    def __init__(self, args=()):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, SIM_SCRIPT, "--port", "0", "--small-images",
                                      "--time-scale", str(SCALE)] + list(args),
                                     stdout=subprocess.PIPE, stderr=self.stderr, stdin=subprocess.DEVNULL)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(15):
            self.stop()
            raise RuntimeError("apixo-sim did not start")
        line = self.proc.stdout.readline().decode()
        m = BANNER.match(line)
        if not m:
            self.stop()
            raise RuntimeError("unexpected banner %r" % line)
        self.url = m.group(1)
        self.api = self.url + "/api/v1"

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read().decode())["data"]

    def stats(self):
        return self._call("GET", "/_sim/stats")

    def reset(self):
        self._call("POST", "/_sim/reset", {})
        self._call("POST", "/_sim/config", BASE_CONFIG)

    def config(self, **kw):
        return self._call("POST", "/_sim/config", kw)

    def faults(self, *faults):
        return self._call("POST", "/_sim/faults", list(faults))

    def clear_faults(self):
        return self._call("DELETE", "/_sim/faults")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def sim_proc():
    s = Sim()
    yield s
    s.stop()


@pytest.fixture
def sim(sim_proc):
    sim_proc.reset()
    return sim_proc


class CLI:
    def __init__(self, sim, tmp):
        self.path = cli_path()
        self.sim = sim
        self.tmp = tmp

    def env(self, key=KEY, base=None):
        env = dict(os.environ)
        for k in ("APIXO_API_KEY", "APIXO_BASE_URL"):
            env.pop(k, None)
        if key is not None:
            env["APIXO_API_KEY"] = key
        env["APIXO_BASE_URL"] = base or self.sim.api
        return env

    def args(self, args, scale=SCALE):
        return [self.path] + list(args) + ["--time-scale", str(scale)]

    def run(self, *args, key=KEY, base=None, scale=SCALE, timeout=60, env=None, stdin=subprocess.DEVNULL):
        """Runs the binary to completion (stdin closed unless given, output captured: not a terminal)."""
        return subprocess.run(self.args(args, scale), env=env or self.env(key, base), stdin=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, *args, key=KEY, scale=SCALE, **kw):
        return subprocess.Popen(self.args(args, scale), env=self.env(key), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


@pytest.fixture
def cli(sim, tmp_path):
    return CLI(sim, tmp_path)


def api_requests(stats):
    """Requests to the API (not to the simulator's /_sim/ hooks)."""
    return sum(sum(c.values()) for ep, c in stats["requests"].items() if ep != "sim")


def wait_for(pred, timeout=20.0, step=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def run_pty(argv, env, timeout=30):
    """Runs argv with stdin, stdout and stderr on a terminal; returns (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        env = dict(env, TERM="xterm")
        os.execve(argv[0], argv, env)
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            ready, _, _ = select.select([fd], [], [], 1)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), buf.decode("utf-8", "replace")
