"""`apixo batch`: results.jsonl, exit codes, and resumption after kill -9, SIGINT and SIGTERM
without submitting anything twice (proved by the simulator's counters)."""

import json
import os
import signal
import time

from conftest import api_requests, wait_for


def write_lines(path, objs):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return str(path)


def read_results(out):
    p = os.path.join(out, "results.jsonl")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def count_results(out):
    p = os.path.join(out, "results.jsonl")
    try:
        with open(p) as f:
            return sum(1 for line in f if line.endswith("\n"))
    except FileNotFoundError:
        return 0


def check_complete(cli, out, prompts, indeterminate_ok=True):
    """One result line per input line, files present, every prompt submitted exactly once."""
    results = read_results(out)
    assert sorted(r["line"] for r in results) == list(range(1, len(prompts) + 1))
    assert len({r["tag"] for r in results}) == len(prompts)
    submits = cli.sim.stats()["submits_by_prompt"]
    by_line = {r["line"]: r for r in results}
    indeterminate = 0
    for i, prompt in enumerate(prompts, 1):
        r = by_line[i]
        assert r["input"]["prompt"] == prompt
        if r["state"] == "indeterminate":
            # The answer to its submit was lost: sent at most once, never resent.
            assert indeterminate_ok and submits.get(prompt, 0) <= 1, (prompt, submits.get(prompt))
            indeterminate += 1
            continue
        assert submits.get(prompt) == 1, (prompt, submits.get(prompt))
        assert r["state"] == "success", r
        assert r["paths"] and all(os.path.getsize(p) > 0 for p in r["paths"])
    assert set(submits) <= set(prompts) and all(n == 1 for n in submits.values()), submits
    return indeterminate


def test_batch_results_and_exit_code(cli, tmp_path):
    objs = [{"prompt": "b%d" % i, "max_images": 1 + i % 3} for i in range(1, 6)]
    objs.append({"prompt": "fails [fail:CONTENT_VIOLATION]"})
    objs.append({"prompt": "unknown model", "model": "no-such-model"})
    objs.append({"prompt": "png", "format": "png", "aspect_ratio": "16:9", "sequential": False})
    src = write_lines(tmp_path / "in.jsonl", objs)
    out = str(tmp_path / "out")
    r = cli.run("batch", src, "--out", out)
    assert r.returncode == 5, r.stderr                       # a failed task (beats a rejected line)
    assert "8 lines: 6 succeeded, 1 failed, 1 rejected, 0 indeterminate, 0 unfinished" in r.stdout
    res = {x["line"]: x for x in read_results(out)}
    assert len(res) == 8
    for i in range(1, 6):
        assert res[i]["state"] == "success" and len(res[i]["paths"]) == 1 + i % 3
        assert res[i]["input"] == objs[i - 1] and res[i]["taskId"].startswith("task_")
    assert res[6]["state"] == "failed" and res[6]["failCode"] == "CONTENT_VIOLATION"
    assert res[7]["state"] == "rejected" and res[7]["code"] == "APIXO_ERR_NOT_FOUND" and res[7]["taskId"] is None
    assert res[8]["paths"][0].endswith(".png")
    # Non-terminal stderr: one plain line per finished input line.
    assert "line 6: failed" in r.stderr and "\x1b" not in r.stderr
    # A rerun has nothing left to do and sends nothing.
    before = api_requests(cli.sim.stats())
    r = cli.run("batch", src, "--out", out, "--json")
    assert r.returncode == 5
    doc = json.loads(r.stdout)
    assert doc["lines"] == 8 and doc["succeeded"] == 6 and doc["submitted"] == 0 and doc["unfinished"] == 0
    assert api_requests(cli.sim.stats()) == before


def test_batch_all_good_exit_0_and_within_limits(cli, tmp_path):
    prompts = ["ok %d" % i for i in range(15)]
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": p} for p in prompts])
    out = str(tmp_path / "out")
    r = cli.run("batch", src, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    check_complete(cli, out, prompts, indeterminate_ok=False)
    st = cli.sim.stats()
    assert st["rate_limited"]["total"] == 0 and st["peak_concurrent_tasks"] <= 10


def test_batch_bad_input_sends_nothing(cli, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "fine"}\n\nnot json\n{"prompt": "x", "max_images": 42}\n{"max_images": 1}\n')
    r = cli.run("batch", str(src), "--out", str(tmp_path / "out"))
    assert r.returncode == 2
    assert "line 3" in r.stderr and "line 4" in r.stderr and "line 5" in r.stderr and "line 1:" not in r.stderr
    assert api_requests(cli.sim.stats()) == 0
    assert cli.run("batch", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")).returncode == 2


def test_batch_killed_midway_resumes_without_double_submits(cli, tmp_path):
    """25 lines; kill -9 after some results landed, rerun until done: each prompt sent once."""
    scale = 0.02
    cli.sim.config(time_scale=scale)
    prompts = ["kill test %02d" % i for i in range(1, 26)]
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": p} for p in prompts])
    out = str(tmp_path / "out")
    kills = 0
    for attempt in range(12):
        have = count_results(out)
        p = cli.start("batch", src, "--out", out, "--max-tasks", "4", scale=scale)
        if have < 25 and kills < 3:
            # Kill once a few more callbacks landed (or the run finished first).
            wait_for(lambda: count_results(out) >= min(25, have + 4) or p.poll() is not None, 30, 0.005)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.communicate(timeout=30)
            continue
        _, err = p.communicate(timeout=60)
        assert p.returncode in (0, 7), err
        break
    else:
        raise AssertionError("the batch did not finish")
    assert kills >= 2
    check_complete(cli, out, prompts)
    assert cli.sim.stats()["rate_limited"]["total"] == 0


def _stop_and_resume(cli, tmp_path, sig, expect):
    scale = 0.02
    cli.sim.config(time_scale=scale)
    prompts = ["signal %d %02d" % (sig, i) for i in range(1, 21)]
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": p} for p in prompts])
    out = str(tmp_path / "out")
    p = cli.start("batch", src, "--out", out, "--max-tasks", "3", scale=scale)
    assert wait_for(lambda: count_results(out) >= 3, 30, 0.005)
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode == expect, err
    assert "run the same command again" in err
    assert count_results(out) < 20
    r = cli.run("batch", src, "--out", out, "--max-tasks", "3", scale=scale)
    assert r.returncode == 0, r.stderr
    assert check_complete(cli, out, prompts) == 0


def test_batch_sigint_stops_cleanly_and_resumes(cli, tmp_path):
    _stop_and_resume(cli, tmp_path, signal.SIGINT, 130)


def test_batch_sigterm_stops_cleanly_and_resumes(cli, tmp_path):
    _stop_and_resume(cli, tmp_path, signal.SIGTERM, 143)


def test_batch_indeterminate_is_recorded_not_resent(cli, tmp_path):
    prompts = ["ind %d" % i for i in range(1, 6)]
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": p} for p in prompts])
    out = str(tmp_path / "out")
    cli.sim.faults({"kind": "reset_after_body", "endpoint": "generateTask"})
    r = cli.run("batch", src, "--out", out, "--max-tasks", "1")
    assert r.returncode == 7, r.stderr
    assert "indeterminate" in r.stderr
    assert check_complete(cli, out, prompts) == 1
    r = cli.run("batch", src, "--out", out)
    assert r.returncode == 7
    assert sum(cli.sim.stats()["submits_by_prompt"].values()) == 5


def test_batch_transient_failure_is_retried_by_a_rerun(cli, tmp_path):
    """A submit refused before any task existed (429 past the retry budget) is not recorded:
    the rerun submits it; nothing else is sent again."""
    prompts = ["tr %d" % i for i in range(1, 4)]
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": p} for p in prompts])
    out = str(tmp_path / "out")
    cli.sim.faults({"kind": "status", "status": 429, "endpoint": "generateTask", "count": 4})
    r = cli.run("batch", src, "--out", out, "--max-tasks", "1")
    assert r.returncode == 4, r.stderr
    assert "unfinished" in r.stderr and count_results(out) == 2
    r = cli.run("batch", src, "--out", out)
    assert r.returncode == 0, r.stderr
    results = read_results(out)
    assert len(results) == 3 and all(x["state"] == "success" for x in results)
    assert cli.sim.stats()["tasks_by_prompt"] == {p: 1 for p in prompts}


def test_batch_failed_download_is_carried_over(cli, tmp_path):
    """A success whose files could not be fetched stays in .apixo-pending.jsonl; the rerun
    downloads it without submitting again."""
    prompts = ["dl 1", "dl 2"]
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": p, "max_images": 2} for p in prompts])
    out = str(tmp_path / "out")
    cli.sim.faults({"kind": "status", "status": 500, "endpoint": "files", "count": 1000})
    r = cli.run("batch", src, "--out", out)
    assert r.returncode == 6, r.stderr
    assert "2 line(s) unfinished" in r.stderr and count_results(out) == 0
    with open(os.path.join(out, ".apixo-pending.jsonl")) as f:
        assert sorted(json.loads(x)["kind"] for x in f) == ["download", "download"]
    cli.sim.clear_faults()
    r = cli.run("batch", src, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "2 carried over, 0 to submit" in r.stderr
    assert cli.sim.stats()["submits_by_prompt"] == {p: 1 for p in prompts}
    results = read_results(out)
    assert len(results) == 2 and all(len(x["paths"]) == 2 for x in results)
    assert not os.path.exists(os.path.join(out, ".apixo-pending.jsonl"))


def read_pending(out):
    p = os.path.join(out, ".apixo-pending.jsonl")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def test_batch_status_failure_never_resubmits(cli, tmp_path):
    """The task was accepted but its status cannot be read: the callback's stand-in snapshot
    carries its id, so the line is handed over as a watch and the rerun finishes it without
    submitting again."""
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": "status breaks"}])
    out = str(tmp_path / "out")
    cli.sim.faults({"kind": "status", "status": 500, "endpoint": "statusTask", "count": 1000})
    r = cli.run("batch", src, "--out", out)
    assert r.returncode == 6, r.stderr
    assert "1 line(s) unfinished" in r.stderr and count_results(out) == 0
    (watch,) = read_pending(out)
    assert watch["kind"] == "watch" and watch["taskId"].startswith("task_") and watch["tag"].startswith("L1-")
    cli.sim.clear_faults()
    r = cli.run("batch", src, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "1 carried over, 0 to submit" in r.stderr
    (res,) = read_results(out)
    assert res["state"] == "success" and res["taskId"] == watch["taskId"]
    assert cli.sim.stats()["submits_by_prompt"] == {"status breaks": 1}
    assert read_pending(out) == []


def test_batch_tagged_watch_is_resumed_from_the_journal(cli, tmp_path):
    """A watch started by a rerun is journalled with its line's tag: killed while watching, the
    next run takes it up from the journal (not from its own files) and finishes the line."""
    cli.sim.config(time_scale=0.1, rpm=0)         # the task runs 2.5 to 3.5 s
    scale = 0.02
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": "watched"}])
    out = str(tmp_path / "out")
    cli.sim.faults({"kind": "status", "status": 500, "endpoint": "statusTask", "count": 4})
    r = cli.run("batch", src, "--out", out, scale=scale)
    assert r.returncode == 6, r.stderr
    (watch,) = read_pending(out)
    assert watch["kind"] == "watch"
    # The rerun watches the task; the journal has the watch once the start line is out.
    p = cli.start("batch", src, "--out", out, scale=scale)
    line = p.stderr.readline()
    assert "1 carried over, 0 to submit" in line, line
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=10)
    assert count_results(out) == 0, "the task finished before the kill: make it slower"
    r = cli.run("batch", src, "--out", out, scale=scale)
    assert r.returncode == 0, r.stderr
    assert "1 resumed, 0 carried over, 0 to submit" in r.stderr
    (res,) = read_results(out)
    assert res["state"] == "success" and res["taskId"] == watch["taskId"] and res["line"] == 1
    assert cli.sim.stats()["submits_by_prompt"] == {"watched": 1}


def test_batch_json_progress_has_exact_counts(cli, tmp_path):
    """With --json the progress goes to stderr as JSON objects; in flight and queued come from
    the client's counters, not from --max-tasks."""
    scale = 0.03
    cli.sim.config(time_scale=scale)
    prompts = ["progress %d" % i for i in range(1, 5)]
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": p} for p in prompts])
    out = str(tmp_path / "out")
    r = cli.run("batch", src, "--out", out, "--json", "--max-tasks", "2", scale=scale)
    assert r.returncode == 0, r.stderr
    progress = [json.loads(x)["progress"] for x in r.stderr.splitlines() if x.startswith('{"progress"')]
    assert progress, r.stderr
    # Right after the submits: two sent (the cap), two held in the local queue.
    assert progress[0] == {"lines": 4, "done": 0, "failed": 0, "inFlight": 2, "queued": 2, "downloading": 0}
    assert all(x["inFlight"] <= 2 for x in progress)
    queued = [x["queued"] for x in progress]
    assert queued == sorted(queued, reverse=True) and queued[-1] == 0
    assert any(x["done"] > 0 for x in progress)
    assert len({json.dumps(x, sort_keys=True) for x in progress}) == len(progress)   # one per change
    doc = json.loads(r.stdout)
    assert doc["succeeded"] == 4 and doc["submitted"] == 4
    check_complete(cli, out, prompts, indeterminate_ok=False)
    assert cli.sim.stats()["peak_concurrent_tasks"] <= 2
    # --quiet: no progress at all.
    r = cli.run("batch", src, "--out", out, "--json", "--quiet", scale=scale)
    assert r.returncode == 0 and r.stderr == ""


def test_batch_one_run_per_directory(cli, tmp_path):
    cli.sim.config(time_scale=1.0)
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": "long one"}])
    out = str(tmp_path / "out")
    p = cli.start("batch", src, "--out", out, scale=1.0)
    assert wait_for(lambda: cli.sim.stats()["tasks_created"] == 1, 10)
    r = cli.run("batch", src, "--out", out, scale=1.0)
    assert r.returncode == 8 and "another" in r.stderr
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=10)
    assert p.returncode == 143
    assert cli.sim.stats()["submits_by_prompt"] == {"long one": 1}
