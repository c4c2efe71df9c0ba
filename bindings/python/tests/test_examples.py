"""The examples in examples/python run against the simulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import PKG_ROOT, REPO

EXAMPLES = REPO / "examples" / "python"


def run_example(sim, *argv, timeout=60):
    env = dict(os.environ, APIXO_API_KEY=sim.key, APIXO_BASE_URL=sim.api,
               APIXO_TIME_SCALE=str(sim.time_scale),
               PYTHONPATH=os.pathsep.join([str(PKG_ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *map(str, argv)], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_generate_example(sim, tmp_path):
    r = run_example(sim, EXAMPLES / "generate.py", "a lighthouse at dusk", "--max-images", "2",
                    "--format", "png", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    paths = [line for line in r.stdout.splitlines() if line.endswith(".png")]
    assert len(paths) == 2 and all(Path(p).is_file() for p in paths)


def test_generate_example_reports_a_failed_task(sim, tmp_path):
    r = run_example(sim, EXAMPLES / "generate.py", "[fail:CONTENT_VIOLATION] x", "--out", tmp_path)
    assert r.returncode == 3 and "CONTENT_VIOLATION" in r.stderr


def test_async_batch_example(sim, tmp_path):
    r = run_example(sim, EXAMPLES / "async_batch.py", "--demo", "12", "--out", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "12/12 succeeded" in r.stdout
    assert len(list(tmp_path.iterdir())) == 12


def test_webhook_server_example(sim):
    r = run_example(sim, EXAMPLES / "webhook_server.py", "--demo", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3/3 succeeded" in r.stdout
    assert "webhooks received for 3/3 tasks" in r.stdout
    assert sim.stats()["webhooks"]["delivered"] >= 3
