"""Logging: silent by default (a NullHandler: an error the program caught prints nothing),
APIXO_LOG=debug prints the library's lines and the binding's (queueing, submits, state
changes, downloads), and the API key never appears."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import PKG_ROOT


def _run(sim, body: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "APIXO_LOG"}
    env.update(PYTHONPATH=str(PKG_ROOT), **env_extra)
    script = (
        "import apixo, tempfile\n"
        f"KEY, URL = {sim.key!r}, {sim.api!r}\n" + body
    )
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60)


def test_a_caught_error_prints_nothing(sim):
    r = _run(sim, (
        "with apixo.Client(api_key='sk-wrong', base_url=URL, time_scale=0.01) as c:\n"
        "    try:\n"
        "        c.generate('x', max_images=1, timeout=30)\n"
        "    except apixo.AuthenticationError:\n"
        "        print('caught')\n"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "caught\n" and r.stderr == ""


def test_apixo_log_debug_shows_each_step_and_never_the_key(sim):
    r = _run(sim, (
        "with apixo.Client(api_key=KEY, base_url=URL, time_scale=0.01) as c:\n"
        "    t = c.generate('logged', max_images=1, timeout=30)\n"
        "    t.save(tempfile.mkdtemp())\n"), APIXO_LOG="debug")
    assert r.returncode == 0, r.stderr
    err = r.stderr
    for line in ("client started", "queueing a submit", "submit seedream-5-0 (attempt",
                 "accepted", "submit accepted: task", "downloaded 1 result"):
        assert line in err, (line, err)
    # each request and its answer, from the core: method, path, status, duration; a
    # download's path without its query string
    assert re.search(r"POST /generateTask/seedream-5-0 -> HTTP 200 in \d+ ms", err), err
    assert re.search(r"GET /statusTask/seedream-5-0\?taskId=task_\w+ -> HTTP 200 in \d+ ms", err), err
    assert re.search(r"GET http://127\.0\.0\.1:\d+/files/[^?\s]+ -> HTTP 200 in \d+ ms", err), err
    # the states the wait saw (at the simulator's pace the first one may be the last)
    assert re.search(r"DEBUG\] task task_\w+: (\w+ -> )*success\n", err), err
    assert all(line.startswith("[") and " apixo " in line for line in err.splitlines()), err
    assert sim.key not in err


def test_apixo_log_info_hides_debug(sim):
    r = _run(sim, (
        "with apixo.Client(api_key=KEY, base_url=URL, time_scale=0.01) as c:\n"
        "    c.generate('logged', max_images=1, timeout=30)\n"), APIXO_LOG="info")
    assert r.returncode == 0, r.stderr
    assert "accepted" in r.stderr and "queueing" not in r.stderr
