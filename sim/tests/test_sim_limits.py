"""Point 4: requests per sliding window and concurrent tasks, per key; truthful Retry-After."""

import math
import time

from simtest import KEY, OTHER_KEY


def limited(r, reason):
    assert r.status == 429, r
    e = r.json
    assert e["code"] == 429 and e["message"] == "Rate limit exceeded"
    assert e["data"]["reason"] == reason
    ra = int(r.headers["retry-after"])
    ms = int(r.headers["x-sim-retry-after-ms"])
    assert ms >= 1 and ra >= 1 and ra == max(1, math.ceil(ms / 1000.0))
    assert e["data"]["retryAfterMs"] == ms
    return ms


def test_rpm_window_retry_after_is_truthful(sim):
    sim.config(rpm=5, time_scale=0.02)             # window 1.2 s
    for _ in range(5):
        assert sim.status("task_x").status == 404  # any answer counts
    r = sim.status("task_x")
    ms = limited(r, "rpm")
    assert ms <= 1200
    # rejected requests use no slot: more 429s do not push the wait further out
    for _ in range(3):
        ms2 = limited(sim.status("task_x"), "rpm")
        assert ms2 <= ms
    time.sleep(ms2 / 1000.0)
    assert sim.status("task_x").status == 404       # sent after Retry-After: not limited
    s = sim.stats()
    assert s["rate_limited"]["by_endpoint"] == {"statusTask": 4}
    assert s["rate_limited"]["by_reason"] == {"rpm": 4}
    assert s["requests"]["statusTask"]["429"] == 4


def test_every_endpoint_counts_toward_rpm(sim):
    sim.config(rpm=3, time_scale=1.0)
    assert sim.submit().status == 200
    assert sim.submit(model="nope").status == 404
    assert sim.status("task_x").status == 404
    r = sim.submit()
    limited(r, "rpm")
    limited(sim.status("task_x"), "rpm")
    # files and /_sim/ do not count; an unauthenticated request does not either
    assert sim.request("GET", "/files/task_0-1.jpg", key=None).status == 404
    assert sim.status("task_x", key="bad").status == 401
    assert sim.stats()["rate_limited"]["by_endpoint"] == {"generateTask": 1, "statusTask": 1}


def test_retry_after_whole_seconds_rounded_up(sim):
    sim.config(rpm=1, time_scale=1.0)                # window 60 s
    assert sim.status("task_x").status == 404
    r = sim.status("task_x")
    ms = limited(r, "rpm")
    assert 58000 < ms <= 60000
    assert int(r.headers["retry-after"]) == math.ceil(ms / 1000.0)


def test_rpm_is_per_key(sim):
    sim.config(rpm=2, time_scale=1.0)
    assert sim.status("task_x").status == 404
    assert sim.status("task_x").status == 404
    limited(sim.status("task_x"), "rpm")
    assert sim.status("task_x", key=OTHER_KEY).status == 404


def test_rpm_zero_is_unlimited(sim):
    sim.config(rpm=0)
    c = sim.conn()
    for _ in range(120):
        c.request("GET", "/api/v1/statusTask/seedream-5-0?taskId=t",
                  headers={"Authorization": "Bearer " + KEY})
        r = c.getresponse()
        r.read()
        assert r.status == 404
    c.close()


def test_concurrency_limit_and_truthful_retry_after(sim):
    sim.config(concurrency=2, time_scale=0.03)       # tasks live 765 to 1110 ms
    a = sim.submit_ok()
    b = sim.submit_ok()
    r = sim.submit()
    ms = limited(r, "concurrency")
    assert ms <= 1110                                 # 2K: <= 60 ms queue + 1050 ms processing
    # polling is not limited by concurrency
    assert sim.status(a).status == 200
    time.sleep(ms / 1000.0)
    c = sim.submit_ok()                               # a slot is free: not limited
    s = sim.stats()
    assert s["rate_limited"]["by_reason"] == {"concurrency": 1}
    assert s["peak_concurrent_tasks"] == 2 and s["peak_concurrent_tasks_by_key"][KEY] == 2
    assert s["tasks_created"] == 3
    for t in (a, b, c):
        sim.wait(t)
    assert sim.stats()["tasks_in_flight"] == 0


def test_concurrency_429_uses_no_rpm_slot(sim):
    sim.config(concurrency=1, rpm=3, time_scale=1.0)  # tasks last ~30 s: stay in flight
    assert sim.submit().status == 200                 # slot 1
    for _ in range(4):
        limited(sim.submit(), "concurrency")          # no slots used
    assert sim.status("task_x").status == 404         # slot 2
    assert sim.status("task_x").status == 404         # slot 3
    limited(sim.status("task_x"), "rpm")


def test_concurrency_is_per_key_and_failed_tasks_free_slots(sim):
    sim.config(concurrency=1, time_scale=0.1)        # fails after 0.55 s or more
    t = sim.submit_ok({"prompt": "[fail:GENERATION_FAILED] x"})
    limited(sim.submit(), "concurrency")
    assert sim.submit(key=OTHER_KEY).status == 200
    assert sim.wait(t)["state"] == "failed"
    assert sim.submit().status == 200
    s = sim.stats()
    assert s["tasks_created_by_key"] == {KEY: 2, OTHER_KEY: 1}


def test_time_scale_applies_to_window(sim):
    sim.config(rpm=1, time_scale=0.02)                # window 1.2 s instead of 60 s
    assert sim.status("task_x").status == 404
    ms = limited(sim.status("task_x"), "rpm")
    assert ms <= 1200
    time.sleep(ms / 1000.0)
    assert sim.status("task_x").status == 404


def test_validation_errors_count_toward_rpm(sim):
    sim.config(rpm=2, time_scale=1.0)
    assert sim.request("POST", "/api/v1/generateTask/seedream-5-0", {"input": {}}).status == 400
    assert sim.request("POST", "/api/v1/generateTask/seedream-5-0", b"{").status == 400
    limited(sim.submit(), "rpm")
