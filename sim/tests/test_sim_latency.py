"""--latency: processing-time distributions other than the documented uniform one.

They change durations only; every other behaviour stays the documented one. Durations are read
back from the task's own timestamps (costTime = processing, start - createTime = queue wait).
"""

import math
import subprocess
import sys

import pytest

from simtest import SIM_SCRIPT

FAST = ["--time-scale", "0.01", "--small-images", "--rpm", "0", "--concurrency", "0", "--seed", "7"]


def phases(d):
    start = d["completeTime"] - d["costTime"]
    return start - d["createTime"], d["costTime"]


def run(p, n, inputs=None):
    """Submits n tasks one after the other, then waits for all; (queue, cost) ms in submit order."""
    ids = [p.submit_ok((inputs or [{}])[i % len(inputs or [{}])]) for i in range(n)]
    return [phases(p.wait(t)) for t in ids]


def test_uniform_is_the_default_and_shown_in_config(sim_factory):
    p = sim_factory(*FAST)
    assert p.sim("GET", "config")["latency"] == {"kind": "uniform"}
    for queue, cost in run(p, 5):
        assert 250 - 1 <= cost <= 350 + 1 and 5 - 1 <= queue <= 20 + 1


def test_drift_slows_every_task_from_the_given_index_and_reset_restarts_the_count(sim_factory):
    p = sim_factory(*FAST, "--latency", "drift", "--drift-factor", "3", "--drift-from", "4")
    assert p.sim("GET", "config")["latency"] == {"kind": "drift", "factor": 3.0, "start": 4}
    got = run(p, 6)
    for queue, cost in got[:3]:
        assert 250 - 1 <= cost <= 350 + 1 and queue <= 20 + 1
    for queue, cost in got[3:]:
        assert 750 - 3 <= cost <= 1050 + 3 and 15 - 3 <= queue <= 60 + 3
    p.sim("POST", "reset")
    assert 250 - 1 <= run(p, 1)[0][1] <= 350 + 1


def test_lognormal_has_the_median_and_a_long_tail(sim_factory):
    p = sim_factory(*FAST, "--latency", "lognormal", "--lognormal-median", "30", "--lognormal-sigma", "0.35")
    assert p.sim("GET", "config")["latency"] == {"kind": "lognormal", "median": 30.0, "sigma": 0.35}
    costs = sorted(c for _, c in run(p, 40))
    median = costs[len(costs) // 2]
    assert 240 <= median <= 370, costs                 # 300 ms with 40 draws of sigma 0.35
    # outside the documented 250-350 ms on both sides: a spread a uniform draw never has
    assert costs[0] < 250 and costs[-1] > 350, costs
    logs = [math.log(c) for c in costs]
    mean = sum(logs) / len(logs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    assert 0.2 <= sd <= 0.55, sd


def test_bimodal_by_coin_mixes_two_populations_for_one_resolution(sim_factory):
    p = sim_factory(*FAST, "--latency", "bimodal", "--bimodal-slow", "40-50", "--bimodal-share", "0.5")
    assert p.sim("GET", "config")["latency"] == {"kind": "bimodal", "slow": [40.0, 50.0], "share": 0.5,
                                                 "by": "coin"}
    costs = [c for _, c in run(p, 24)]
    fast = [c for c in costs if c <= 350 + 1]
    slow = [c for c in costs if c >= 400 - 1]
    assert len(fast) + len(slow) == len(costs), costs  # nothing in between
    assert 4 <= len(slow) <= 20, costs                  # both populations present


def test_bimodal_share_one_is_all_slow(sim_factory):
    p = sim_factory(*FAST, "--latency", "bimodal", "--bimodal-share", "1")
    assert all(350 - 1 <= c <= 500 + 1 for _, c in run(p, 6))


def test_bimodal_by_resolution_slows_the_high_tier_only(sim_factory):
    p = sim_factory(*FAST, "--latency", "bimodal", "--bimodal-by", "resolution", "--bimodal-slow", "60-70")
    got = run(p, 6, inputs=[{"resolution": "2K"}, {"resolution": "3K"}])
    for i, (_, cost) in enumerate(got):
        lo, hi = (250, 350) if i % 2 == 0 else (600, 700)
        assert lo - 1 <= cost <= hi + 1, (i, cost)


@pytest.mark.parametrize("kind", ["uniform", "drift", "lognormal", "bimodal"])
def test_same_seed_same_durations(sim_factory, kind):
    extra = ["--latency", kind, "--drift-from", "2"]
    a = run(sim_factory(*FAST, *extra), 4)
    b = run(sim_factory(*FAST, *extra), 4)
    assert a == b


def test_uniform_draws_are_unchanged_by_the_option(sim_factory):
    a = run(sim_factory(*FAST), 3)
    b = run(sim_factory(*FAST, "--latency", "uniform"), 3)
    assert a == b


@pytest.mark.parametrize("args", [["--latency", "gamma"], ["--drift-factor", "0"], ["--drift-from", "0"],
                                  ["--lognormal-sigma", "-1"], ["--bimodal-slow", "50-30"],
                                  ["--bimodal-slow", "40"], ["--bimodal-share", "1.5"],
                                  ["--bimodal-by", "model"]])
def test_bad_latency_options_are_rejected(args):
    out = subprocess.run([sys.executable, SIM_SCRIPT] + args, capture_output=True, timeout=30)
    assert out.returncode == 2 and out.stdout == b""
