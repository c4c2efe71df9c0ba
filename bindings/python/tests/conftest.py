"""Shared fixtures: one apixo-sim per test session (time scale 0.01, small images).

The simulator is ../../sim/apixo_sim.py, started on a free port and stopped at the end.
Every test gets it reset (tasks, counters, faults) through the ``sim`` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

HERE = Path(__file__).resolve().parent
PKG_ROOT = HERE.parent
REPO = PKG_ROOT.parent.parent
SIM_SCRIPT = REPO / "sim" / "apixo_sim.py"
TIME_SCALE = 0.01
API_KEY = "sk-sim"

# the package under test is the source tree, not whatever may be installed
sys.path.insert(0, str(PKG_ROOT))

if not os.environ.get("APIXO_LIBRARY"):
    built = REPO / "build" / "lib" / "libapixo.so"
    if built.exists():
        os.environ["APIXO_LIBRARY"] = str(built)


class Sim:
    """A running apixo-sim and its test hooks."""

    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url                  # http://127.0.0.1:PORT
        self.api = url + "/api/v1"      # the client's base URL
        self.key = API_KEY
        self.time_scale = TIME_SCALE

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["data"]

    def stats(self) -> Dict[str, Any]:
        return self._call("GET", "/_sim/stats")

    def reset(self) -> None:
        self._call("POST", "/_sim/reset", {})

    def faults(self, *faults: Dict[str, Any]) -> None:
        """Queue faults, e.g. {"kind": "status", "status": 402, "endpoint": "generateTask"}."""
        self._call("POST", "/_sim/faults", list(faults))

    def config(self, **cfg: Any) -> Dict[str, Any]:
        return self._call("POST", "/_sim/config", cfg)

    def submits(self, prompt: str) -> int:
        return self.stats()["submits_by_prompt"].get(prompt, 0)


def _start_sim(tmp: Path) -> Sim:
    log = open(tmp / "sim.stderr", "wb")
    proc = subprocess.Popen(
        [sys.executable, str(SIM_SCRIPT), "--port", "0", "--time-scale", str(TIME_SCALE),
         "--small-images"],
        stdout=subprocess.PIPE, stderr=log, text=True)
    line: List[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(20)
    if not line or "listening on" not in line[0]:
        proc.kill()
        raise RuntimeError(f"apixo-sim did not start: {line!r}; see {tmp / 'sim.stderr'}")
    url = line[0].split()[-1].rstrip("/")
    return Sim(proc, url)


@pytest.fixture(scope="session")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    if not SIM_SCRIPT.exists():
        pytest.skip(f"simulator not found at {SIM_SCRIPT}")
    server = _start_sim(tmp_path_factory.mktemp("sim"))
    try:
        yield server
    finally:
        server.proc.terminate()
        try:
            server.proc.wait(10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture
def sim(sim_server: Sim) -> Sim:
    sim_server.reset()
    sim_server.config(rpm=60, concurrency=10)
    return sim_server


def make_client(sim: Sim, **kw: Any):
    import apixo

    kw.setdefault("api_key", sim.key)
    kw.setdefault("base_url", sim.api)
    kw.setdefault("time_scale", sim.time_scale)
    return apixo.Client(**kw)


@pytest.fixture
def client(sim: Sim):
    c = make_client(sim)
    try:
        yield c
    finally:
        c.close()


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def os_thread_count() -> int:
    """Threads of this process as the kernel sees them (C threads included)."""
    return len(os.listdir("/proc/self/task"))
