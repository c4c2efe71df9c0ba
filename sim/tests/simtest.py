"""Helpers and fixtures: apixo-sim as a real subprocess on port 0, spoken to over real HTTP.

A uniquely named module (not conftest) so that test modules can import it even when pytest
runs this folder together with other test folders of the repository."""

import http.client
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SIM_DIR = os.path.dirname(HERE)
SIM_SCRIPT = os.path.join(SIM_DIR, "apixo_sim.py")
sys.path.insert(0, SIM_DIR)
sys.path.insert(0, HERE)

BANNER = re.compile(r"^apixo-sim listening on (http://(\[[^\]]+\]|[^:/]+):([0-9]+))\n$")
KEY = "sk-sim"
OTHER_KEY = "sk-other"
SCALE = 0.01
# what the shared sim is reset to before every test
BASE_CONFIG = {"rpm": 0, "concurrency": 0, "time_scale": SCALE, "url_ttl": 1296000,
               "small_images": True}


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # dict, lower-case names
        self.body = body

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Resp %d %r>" % (self.status, self.body[:300])


class SimProcess:
    def __init__(self, args, start_timeout=15.0):
        self.args = list(args)
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, SIM_SCRIPT] + self.args,
                                     stdout=subprocess.PIPE, stderr=self.stderr,
                                     stdin=subprocess.DEVNULL)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(start_timeout):
            self.stop()
            raise RuntimeError("apixo-sim printed nothing within %.0f s: %s"
                               % (start_timeout, self.stderr_text()))
        line = self.proc.stdout.readline().decode()
        self.banner = line
        m = BANNER.match(line)
        if not m:
            self.stop()
            raise RuntimeError("unexpected first line %r; stderr: %s" % (line, self.stderr_text()))
        self.url = m.group(1)
        self.host = m.group(2).strip("[]")
        self.port = int(m.group(3))

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    # -- HTTP ------------------------------------------------------------------------------
    def conn(self, timeout=10.0):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, key=KEY, timeout=10.0,
                content_type="application/json"):
        h = {}
        if key is not None:
            h["Authorization"] = "Bearer " + key
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if body is not None and content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        c = self.conn(timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            c.close()

    def submit(self, input_=None, model="seedream-5-0", key=KEY, **top):
        body = {"input": dict({"prompt": "a cozy cyberpunk cafe", "max_images": 1},
                              **(input_ or {}))}
        body.update(top)
        return self.request("POST", "/api/v1/generateTask/" + model, body, key=key)

    def submit_ok(self, input_=None, model="seedream-5-0", **top):
        r = self.submit(input_, model, **top)
        assert r.status == 200, r
        return r.json["data"]["taskId"]

    def status(self, task_id, model="seedream-5-0", key=KEY):
        return self.request("GET", "/api/v1/statusTask/%s?taskId=%s" % (model, task_id),
                            key=key)

    def wait(self, task_id, model="seedream-5-0", timeout=20.0, interval=0.02):
        deadline = time.time() + timeout
        while True:
            r = self.status(task_id, model)
            assert r.status == 200, r
            d = r.json["data"]
            if d["state"] in ("success", "failed"):
                return d
            assert time.time() < deadline, "task %s not terminal in %.0f s" % (task_id, timeout)
            time.sleep(interval)

    def sim(self, method, path, body=None):
        r = self.request(method, "/_sim/" + path, body, key=None)
        assert r.status == 200, r
        return r.json["data"]

    def stats(self):
        return self.sim("GET", "stats")

    def config(self, **kw):
        return self.sim("POST", "config", kw)

    def faults(self, *faults):
        return self.sim("POST", "faults", list(faults))


@pytest.fixture(scope="session")
def shared_sim():
    p = SimProcess(["--time-scale", str(SCALE), "--small-images", "--rpm", "0",
                    "--concurrency", "0", "--seed", "1234", "--keys", KEY + "," + OTHER_KEY])
    yield p
    rc = p.stop()
    assert rc == 0, p.stderr_text()
    assert "Traceback" not in p.stderr_text(), p.stderr_text()


@pytest.fixture
def sim(shared_sim):
    """The shared simulator, reset and reconfigured to BASE_CONFIG for each test."""
    shared_sim.sim("POST", "reset")
    shared_sim.config(**BASE_CONFIG)
    yield shared_sim


@pytest.fixture
def sim_factory():
    procs = []

    def make(*args):
        p = SimProcess(list(args))
        procs.append(p)
        return p
    yield make
    for p in procs:
        p.stop()


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(interval)
