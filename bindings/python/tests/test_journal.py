"""The journal across crashes: a host is SIGKILLed at several points of a 40-task batch
and restarted on the same journal with resume(); every task is submitted exactly once
and every callback delivered exactly once across runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest

import apixo
from conftest import make_client

HOST = Path(__file__).with_name("journal_host.py")
COUNT = 40


def run_host(sim, journal, state, prefix, kill_when=None, pre_kill_sleep=0.0):
    """Run the host once; SIGKILL it as soon as kill_when(lines) is true."""
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, str(HOST), "--sim", sim.url, "--journal", str(journal),
         "--state", str(state), "--prefix", prefix, "--count", str(COUNT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    timer = threading.Timer(90, proc.kill)
    timer.start()
    lines = []
    killed = False
    try:
        for line in proc.stdout:
            lines.append(line.split())
            if kill_when is not None and kill_when(lines):
                if pre_kill_sleep:
                    time.sleep(pre_kill_sleep)
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
        proc.wait(30)
        err = proc.stderr.read()
    finally:
        timer.cancel()
        proc.stdout.close()
        proc.stderr.close()
    if not killed:
        assert proc.returncode == 0, err
    return lines, killed


def count(lines, word):
    return sum(1 for ln in lines if ln and ln[0] == word)


def test_crash_and_resume_submit_once_deliver_once(sim, tmp_path):
    journal = tmp_path / "host.journal"
    state = tmp_path / "state"
    state.mkdir()
    prefix = f"journal {uuid.uuid4().hex[:8]}"

    # run 1: the first submit to arrive hangs 600 ms at the simulator (which then still
    # creates the task); the host dies while it hangs: a journal intent with no task id
    sim.faults({"kind": "delay", "ms": 600, "endpoint": "generateTask"})
    kills = 0
    lines, killed = run_host(sim, journal, state, prefix,
                             kill_when=lambda ls: count(ls, "submitted") >= 10,
                             pre_kill_sleep=0.15)
    kills += killed
    time.sleep(0.7)  # let the hung submit land at the simulator
    # run 2: killed after a few deliveries (resumed or new)
    lines, killed = run_host(sim, journal, state, prefix,
                             kill_when=lambda ls: count(ls, "delivered") >= 3)
    kills += killed
    # run 3: killed as soon as it started (during resume)
    lines, killed = run_host(sim, journal, state, prefix,
                             kill_when=lambda ls: count(ls, "started") >= 1)
    kills += killed
    # run 4: killed in the middle of its deliveries
    lines, killed = run_host(sim, journal, state, prefix,
                             kill_when=lambda ls: count(ls, "delivered") >= 8)
    kills += killed
    # then to completion
    for _ in range(3):
        lines, killed = run_host(sim, journal, state, prefix)
        if count(lines, "done"):
            break
    assert count(lines, "done") == 1
    assert kills >= 3

    deliveries = defaultdict(list)
    for line in (state / "deliveries.log").read_text().splitlines():
        tag, code, tid = line.split("\t")
        deliveries[tag].append((code, tid))
    stats = sim.stats()
    submits = stats["submits_by_prompt"]
    tags = [f"t-{i}" for i in range(COUNT)]
    assert set(deliveries) == set(tags), set(deliveries) ^ set(tags)

    duplicates = 0
    indeterminate = []
    for tag in tags:
        fails = int(tag.split("-")[1]) % 7 == 3
        prompt = ("[fail:GENERATION_FAILED] " if fails else "") + f"{prefix} {tag}"
        assert submits.get(prompt) == 1, (tag, submits.get(prompt))  # never twice
        assert stats["tasks_by_prompt"].get(prompt) == 1
        codes = [c for c, _ in deliveries[tag]]
        if "APIXO_ERR_INDETERMINATE" in codes:
            indeterminate.append(tag)
            assert all(tid == "" for c, tid in deliveries[tag] if c == "APIXO_ERR_INDETERMINATE")
            assert set(codes) == {"APIXO_ERR_INDETERMINATE"}, codes  # it existed: not resent
        else:
            want = "APIXO_ERR_TASK_FAILED" if fails else "APIXO_OK"
            assert set(codes) == {want}, (tag, codes)
            assert len({tid for _, tid in deliveries[tag]}) == 1
        duplicates += len(codes) - 1
    # a delivery is recorded by the host, then by the journal: only a kill between the
    # two can repeat one, so at most one repeat per kill
    assert duplicates <= kills, deliveries
    assert len(indeterminate) <= 1


def test_resume_without_a_journal_is_a_no_op(client):
    client.resume(lambda t, e: None)
    client.drain(timeout=5)


def test_resume_in_process_after_close(sim, tmp_path):
    """Tasks still running when a client closes are resumed by the next one."""
    journal = tmp_path / "j"
    tags = [f"tag-{i}" for i in range(3)]
    first = []
    with make_client(sim, journal=journal) as c:
        for tag in tags:
            c.submit(f"resume {uuid.uuid4().hex} {tag}", max_images=1, resolution="3K",
                     tag=tag, on_done=lambda t, e: first.append((t, e)))
    got = []
    with make_client(sim, journal=journal) as c:
        c.resume(lambda t, e: got.append((t, e)))
        c.drain(timeout=30)
    closed = {t.tag for t, e in first if isinstance(e, apixo.ClosedError) and t is not None}
    resumed = {t.tag for t, e in got if e is None}
    assert closed <= resumed, (first, got)
    assert all(t.tag in tags and t.succeeded for t, e in got)
