"""Point 5: pending -> processing -> success/failed, documented durations, test triggers."""

import json
import time

ORDER = ["pending", "processing", "success", "failed"]


def phases(d):
    """(queue wait, processing time) in ms, from the timestamps."""
    start = d["completeTime"] - d["costTime"]
    return start - d["createTime"], d["costTime"]


def test_states_progress_in_order_with_consistent_times(sim):
    sim.config(time_scale=0.05)          # pending 25-100 ms, processing 1250-1750 ms
    tid = sim.submit_ok()
    seen = []
    while True:
        d = sim.status(tid).json["data"]
        if not seen or seen[-1] != d["state"]:
            seen.append(d["state"])
        if d["state"] in ("success", "failed"):
            break
        assert set(d) == {"taskId", "state", "createTime"}, d   # nothing else before the end
        time.sleep(0.02)
    assert seen[-1] == "success" and "processing" in seen
    assert [ORDER.index(s) for s in seen] == sorted(ORDER.index(s) for s in seen)
    queue, cost = phases(d)
    assert 25 - 1 <= queue <= 100 + 1
    assert 1250 - 1 <= cost <= 1750 + 1
    assert set(d) == {"taskId", "state", "resultJson", "costTime", "createTime", "completeTime"}
    # terminal answers are stable
    assert sim.status(tid).json["data"] == d


DURATION_CASES = [
    ("seedream-5-0", {"resolution": "2K"}, 25, 35),
    ("seedream-5-0", {}, 25, 35),
    ("seedream-5-0", {"resolution": "3K"}, 35, 50),
    ("seedream-5-0", {"resolution": "2048x2048"}, 25, 35),
    ("seedream-5-0", {"resolution": "4096*2304"}, 35, 50),
    ("seedream-4-5", {"resolution": "2K"}, 25, 35),
    ("seedream-4-5", {"resolution": "4K"}, 45, 60),
    ("seedream-4-5", {"resolution": "4096X4096"}, 45, 60),
]


def test_durations_follow_documented_ranges(sim):
    subs = [(sim.submit_ok(inp, model=model), model, lo, hi)
            for model, inp, lo, hi in DURATION_CASES for _ in range(3)]
    for tid, model, lo, hi in subs:
        d = sim.wait(tid, model=model)
        queue, cost = phases(d)
        assert lo * 10 - 1 <= cost <= hi * 10 + 1, (model, d)   # time scale 0.01: s -> 10 ms
        assert 5 - 1 <= queue <= 20 + 1, d


def test_fail_trigger(sim):
    tid = sim.submit_ok({"prompt": "a scene [fail:CONTENT_VIOLATION] here"})
    d = sim.wait(tid)
    assert d["state"] == "failed"
    assert d["failCode"] == "CONTENT_VIOLATION"
    assert d["failMsg"] == "Content violates safety guidelines"
    assert "resultJson" not in d
    assert set(d) == {"taskId", "state", "failCode", "failMsg", "costTime", "createTime",
                      "completeTime"}
    assert d["completeTime"] - d["costTime"] >= d["createTime"]


def test_fail_codes_pass_through(sim):
    codes = ["NSFW_DETECTED", "PROCESSING_TIMEOUT", "SensitiveContentDetected", "SOME_NEW_CODE"]
    ids = [sim.submit_ok({"prompt": "[fail:%s]" % code}) for code in codes]
    for code, tid in zip(codes, ids):
        d = sim.wait(tid)
        assert d["state"] == "failed" and d["failCode"] == code and d["failMsg"]


def test_unreachable_image_url_fails(sim):
    urls = ["https://ok.example/a.png", "https://unreachable.example/b.png"]
    d = sim.wait(sim.submit_ok({"mode": "image-to-image", "image_urls": urls}))
    assert d["state"] == "failed" and d["failCode"] == "INVALID_IMAGE_URL"
    assert "unreachable.example" in d["failMsg"]
    # a reachable one succeeds
    d = sim.wait(sim.submit_ok({"mode": "image-to-image", "image_urls": urls[:1]}))
    assert d["state"] == "success"


def test_sequential_disabled_returns_max_images(sim):
    subs = [(n, sim.submit_ok({"max_images": n, "sequential_image_generation": "disabled"}))
            for n in (1, 3, 10)]
    subs.append((4, sim.submit_ok({"max_images": 4})))          # disabled is the default
    for n, tid in subs:
        urls = json.loads(sim.wait(tid)["resultJson"])["resultUrls"]
        assert len(urls) == n and len(set(urls)) == n


def test_sequential_auto_may_return_fewer(sim):
    ids = [sim.submit_ok({"max_images": 10, "sequential_image_generation": "auto"})
           for _ in range(8)]
    counts = [len(json.loads(sim.wait(t)["resultJson"])["resultUrls"]) for t in ids]
    assert all(1 <= c <= 10 for c in counts)
    assert min(counts) < 10                       # 8 draws of 1..10: all 10 is ~1e-8


def test_tasks_run_concurrently_and_lazily(sim):
    ids = [sim.submit_ok() for _ in range(20)]
    t0 = time.time()
    for tid in ids:
        assert sim.wait(tid)["state"] == "success"
    assert time.time() - t0 < 5.0       # 20 tasks of ~0.3 s each ran in parallel


def test_success_result_json_is_a_string_with_absolute_urls(sim):
    tid = sim.submit_ok({"max_images": 2, "output_format": "png"})
    d = sim.wait(tid)
    assert isinstance(d["resultJson"], str)
    urls = json.loads(d["resultJson"])["resultUrls"]
    assert urls == ["%s/files/%s-%d.png" % (sim.url, tid, i) for i in (1, 2)]


def test_task_ids_are_unique(sim):
    ids = {sim.submit_ok() for _ in range(30)}
    assert len(ids) == 30
