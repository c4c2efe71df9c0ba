"""Ctrl-C: SIGINT to a program blocked in generate, submit, wait, status or drain raises
KeyboardInterrupt within a fraction of a second (bound: 2 s on a shared machine), and the
exception tells which task was left running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PKG_ROOT

HOST = PKG_ROOT / "tests" / "interrupt_host.py"
HANG = 20_000  # ms the simulator holds the answers the call waits for


@pytest.mark.parametrize("call", ["generate", "submit", "wait", "status", "drain"])
def test_sigint_interrupts_a_blocking_call(sim, call):
    endpoint = "generateTask" if call == "submit" else "statusTask"
    sim.faults({"kind": "delay", "ms": HANG, "endpoint": endpoint, "count": 20})
    env = dict(os.environ, PYTHONPATH=str(PKG_ROOT))
    proc = subprocess.Popen([sys.executable, str(HOST), call, sim.api, sim.key], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "calling"
        time.sleep(0.5)  # well inside the call (every answer it needs takes 20 s)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        caught = proc.stdout.readline()
        latency = time.monotonic() - sent
        # Not communicate(): it reads the pipes' descriptors and would miss what readline()
        # already buffered (the report often arrives in the same read as "interrupted").
        proc.wait(timeout=30)
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert caught.strip() == "interrupted", (caught, err)
    assert out.strip(), ("the host printed no report", proc.returncode, err)
    report = json.loads(out)
    assert report["interrupted"] is True, report
    assert latency < 2.0, (call, latency)
    if call in ("generate", "wait"):
        # the task id rides on the exception, the task goes on, the wait's tracking stopped
        assert report["task_id"] and report["task_id"].startswith("task_"), report
        assert any(report["task_id"] in note for note in report["notes"]), report
        assert report["pending_callbacks"] == 0, report
    if call == "submit":
        assert any("goes on in the background" in note for note in report["notes"]), report
    assert proc.returncode == 0, err
