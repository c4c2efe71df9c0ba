"""Point 8 (stats, reset, config): counters that let client tests prove what the client did."""

import subprocess
import sys

from simtest import KEY, OTHER_KEY, SIM_DIR

STATS_KEYS = {"version", "uptime_ms", "since_reset_ms", "config", "connections_accepted",
              "requests_total", "requests", "rate_limited", "tasks_created",
              "tasks_created_by_key", "tasks_created_by_model", "tasks_by_state",
              "tasks_in_flight", "tasks_in_flight_by_key", "peak_concurrent_tasks",
              "peak_concurrent_tasks_by_key", "submits_by_prompt", "tasks_by_prompt", "polls",
              "polls_total", "webhooks", "faults"}


def test_shape_after_reset(sim):
    s = sim.stats()
    assert set(s) == STATS_KEYS
    assert s["tasks_created"] == 0 and s["polls"] == {} and s["submits_by_prompt"] == {}
    assert s["rate_limited"] == {"total": 0, "by_endpoint": {}, "by_reason": {}}
    assert s["tasks_by_state"] == {"pending": 0, "processing": 0, "success": 0, "failed": 0}
    assert set(s["webhooks"]) == {"scheduled", "attempts", "delivered", "failed_attempts",
                                  "gave_up", "outcomes", "by_task"}
    assert s["faults"] == {"queued": [], "fired": {}}
    assert s["requests"] == {"sim": {"200": 1}}         # the config call of the fixture


def test_counters_follow_a_known_sequence(sim):
    sim.config(concurrency=3, time_scale=1.0)          # tasks stay in flight (~30 s)
    a = sim.submit_ok({"prompt": "alpha"})
    b = sim.submit_ok({"prompt": "alpha"})
    c = sim.submit_ok({"prompt": "beta"}, model="seedream-4-5")
    assert sim.submit({"prompt": "gamma"}).status == 429
    assert sim.submit({"prompt": "delta"}, key=OTHER_KEY).status == 200
    assert sim.submit({"prompt": ""}).status == 400
    for _ in range(3):
        sim.status(a)
    sim.status(b)
    sim.status(c, model="seedream-4-5")
    sim.status("task_unknown")
    s = sim.stats()
    assert s["tasks_created"] == 4
    assert s["tasks_created_by_key"] == {KEY: 3, OTHER_KEY: 1}
    assert s["tasks_created_by_model"] == {"seedream-5-0": 3, "seedream-4-5": 1}
    assert s["tasks_in_flight"] == 4
    assert s["tasks_in_flight_by_key"] == {KEY: 3, OTHER_KEY: 1}
    assert s["peak_concurrent_tasks"] == 4
    assert s["peak_concurrent_tasks_by_key"] == {KEY: 3, OTHER_KEY: 1}
    assert s["submits_by_prompt"] == {"alpha": 2, "beta": 1, "gamma": 1, "delta": 1, "": 1}
    assert s["tasks_by_prompt"] == {"alpha": 2, "beta": 1, "delta": 1}
    assert s["polls"] == {a: 3, b: 1, c: 1} and s["polls_total"] == 5
    assert s["requests"]["generateTask"] == {"200": 4, "429": 1, "400": 1}
    assert s["requests"]["statusTask"] == {"200": 5, "404": 1}
    assert s["rate_limited"] == {"total": 1, "by_endpoint": {"generateTask": 1},
                                 "by_reason": {"concurrency": 1}}
    assert s["tasks_by_state"]["pending"] + s["tasks_by_state"]["processing"] == 4
    assert s["requests_total"] == sum(sum(v.values()) for v in s["requests"].values())


def test_reset_clears_everything_but_config(sim):
    sim.config(rpm=2, time_scale=1.0)
    tid = sim.submit_ok()
    sim.status(tid)
    assert sim.status(tid).status == 429
    sim.faults({"kind": "delay", "ms": 1})
    sim.sim("POST", "reset")
    s = sim.stats()
    assert s["tasks_created"] == 0 and s["polls"] == {} and s["faults"]["queued"] == []
    assert s["rate_limited"]["total"] == 0
    assert s["config"]["rpm"] == 2
    assert sim.status(tid).status == 404               # tasks are gone, the window too
    assert sim.status(tid).status == 404


def test_config_endpoint(sim):
    cfg = sim.config(rpm=5, concurrency=2, time_scale=0.5, url_ttl=10, small_images=False)
    assert (cfg["rpm"], cfg["concurrency"], cfg["time_scale"], cfg["url_ttl"],
            cfg["small_images"]) == (5, 2, 0.5, 10, False)
    assert sim.sim("GET", "config") == cfg
    for bad in ({"rpm": -1}, {"rpm": 1.5}, {"concurrency": "3"}, {"time_scale": 0},
                {"time_scale": True}, {"url_ttl": -3}, {"small_images": 1}, {"port": 1}):
        r = sim.request("POST", "/_sim/config", bad, key=None)
        assert r.status == 400, (bad, r)
    r = sim.request("POST", "/_sim/config", b"{nope", key=None)
    assert r.status == 400 and "Malformed JSON" in r.json["data"]["error"]
    assert sim.sim("GET", "config") == cfg


def test_bench_script_smoke():
    out = subprocess.run([sys.executable, SIM_DIR + "/bench_sim.py", "--seconds", "0.5",
                          "--connections", "2", "--processes", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "status requests/s" in out.stdout
