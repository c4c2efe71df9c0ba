"""What a new user trips over: output folders checked before anything is paid for, the command
that fetches images again, failed lines named on a terminal, pure JSON on stderr with --json,
unknown keys, stdin, typos, negative numbers, paths as typed, completion scripts."""

import json
import os
import shlex
import shutil
import subprocess
import time

from conftest import api_requests, run_pty, wait_for


def write_lines(path, objs):
    path.write_text("".join(json.dumps(o) + "\n" for o in objs))
    return str(path)


def test_output_folder_is_checked_before_anything_is_sent(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for out in (str(blocker / "sub"), "/proc/1"):          # cannot be created; cannot be written
        for args in (["generate", "a paid task", "--out", out], ["download", "task_x", "--out", out]):
            r = cli.run(*args)
            assert r.returncode == 8, (args, r.stderr)
            assert "nothing was sent" in r.stderr and out in r.stderr, r.stderr
    assert api_requests(cli.sim.stats()) == 0
    assert cli.sim.stats()["tasks_created"] == 0
    # A missing folder is created, and no probe file is left behind.
    out = tmp_path / "new" / "deeper"
    r = cli.run("generate", "a cat", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert [p.name for p in out.iterdir() if p.name.startswith(".apixo-probe")] == []


def test_late_io_failure_names_the_command_that_fetches_the_images(cli, tmp_path):
    scale = 0.1
    cli.sim.config(time_scale=scale)
    out = tmp_path / "out dir"        # a space: the printed command must quote it
    p = cli.start("generate", "late failure", "--out", str(out), scale=scale)
    assert wait_for(lambda: cli.sim.stats()["tasks_created"] == 1, 20)
    shutil.rmtree(out)
    out.write_text("the folder became a file while the task ran")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 8, err
    assert "succeeded, fetch its images again with: apixo download task_" in err, err
    again = shlex.split(err.split("fetch its images again with: ", 1)[1].splitlines()[0])
    assert again[:2] == ["apixo", "download"] and again[3:] == ["--out", str(out)], again
    out.unlink()
    r = cli.run(*again[1:], scale=scale)
    assert r.returncode == 0, r.stderr
    (path,) = r.stdout.splitlines()
    assert path.startswith(str(out) + "/" + again[2]) and os.path.getsize(path) > 0
    assert cli.sim.stats()["submits_by_prompt"] == {"late failure": 1}


def test_batch_names_failed_lines_on_a_terminal(cli, tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": "fine"}, {"prompt": "no [fail:CONTENT_VIOLATION]"}])
    code, text = run_pty(cli.args(["batch", src, "--out", str(tmp_path / "out")]), cli.env())
    assert code == 5, text
    assert "\r\x1b[K" in text                                  # the live line is there
    assert "line 2: failed" in text and "CONTENT_VIOLATION" in text, text
    assert "line 1:" not in text                               # successes stay in the bar


def test_json_makes_stderr_pure_json_ending_with_every_line_done(cli, tmp_path):
    prompts = ["json %d" % i for i in range(5)] + ["json [fail:NSFW_DETECTED]"]
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": p} for p in prompts])
    r = cli.run("batch", src, "--out", str(tmp_path / "out"), "--json", "--verbose", "--max-tasks", "2")
    assert r.returncode == 5, r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines()]      # every line parses
    assert all(isinstance(e, dict) and len(e) == 1 for e in events), events
    kinds = {next(iter(e)) for e in events}
    assert kinds <= {"progress", "note", "error", "log"} and {"progress", "note", "log"} <= kinds, kinds
    assert "progress" in events[-1], events[-1]
    assert events[-1]["progress"]["done"] == events[-1]["progress"]["lines"] == len(prompts)
    assert any("line 6: failed" in e.get("note", "") for e in events)
    summary = json.loads(r.stdout)
    assert summary["succeeded"] == 5 and summary["failed"] == 1
    assert os.path.exists(summary["results"])


def test_summary_names_results_only_when_they_exist(cli, tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": "refused"}])
    out = tmp_path / "out"
    r = cli.run("batch", src, "--out", str(out), key="sk-wrong")
    assert r.returncode == 3, r.stderr
    assert not (out / "results.jsonl").exists()
    assert "results: none recorded yet" in r.stdout and "results.jsonl" not in r.stdout
    r = cli.run("batch", src, "--out", str(out), "--json", key="sk-wrong")
    assert json.loads(r.stdout)["results"] is None


def test_unknown_key_is_an_error_naming_the_line(cli, tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": "ok"}, {"prompt": "typo", "max_imgs": 2},
                                              {"prompt": "raw", "input": {"seed": 7}}])
    r = cli.run("batch", src, "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stderr
    assert "line 2: unknown key 'max_imgs' (did you mean 'max_images'?)" in r.stderr, r.stderr
    assert "line 3" not in r.stderr                 # fields under "input" go as they are
    assert api_requests(cli.sim.stats()) == 0


def test_batch_dash_reads_stdin(cli, tmp_path):
    lines = "".join(json.dumps({"prompt": "from stdin %d" % i}) + "\n" for i in range(2))
    out = tmp_path / "out"
    r = subprocess.run(cli.args(["batch", "-", "--out", str(out)]), input=lines, env=cli.env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    results = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(x["input"]["prompt"] for x in results) == ["from stdin 0", "from stdin 1"]
    assert all(x["state"] == "success" for x in results)


def test_subcommand_typo_gets_a_suggestion(cli):
    r = cli.run("generte", "a cat")
    assert r.returncode == 2
    assert "unknown command 'generte' (did you mean 'generate'?)" in r.stderr, r.stderr
    r = cli.run("frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr and "did you mean" not in r.stderr


def test_negative_numbers_get_the_options_rule(cli, tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [{"prompt": "x"}])
    cases = [
        (["generate", "x", "--rpm", "-5"], "--rpm must be 0 or more"),
        (["generate", "x", "--max-tasks", "-1"], "--max-tasks must be 0 or more"),
        (["generate", "x", "--timeout", "-3"], "--timeout must be a number greater than 0"),
        (["wait", "task_x", "--timeout", "-0.5"], "--timeout must be a number greater than 0"),
        (["download", "task_x", "--timeout", "-1"], "--timeout must be a number greater than 0"),
        (["batch", src, "--out", str(tmp_path / "o"), "--downloads", "-2"], "--downloads must be from 1 to 64"),
        (["generate", "x", "--max-images", "-5"], "max_images"),
    ]
    for args, message in cases:
        r = cli.run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)
        assert "Missing value" not in r.stderr
    # --time-scale itself (cli.run appends its own, so call the binary directly).
    r = subprocess.run([cli.path, "generate", "x", "--time-scale", "-1"], env=cli.env(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--time-scale must be a number greater than 0" in r.stderr, r.stderr
    r = cli.run("generate", "x", "--rpm", "-5", "--json")
    assert json.loads(r.stdout)["error"]["message"] == "--rpm must be 0 or more"
    assert api_requests(cli.sim.stats()) == 0


def test_paths_are_printed_as_typed_without_doubled_slashes(cli, tmp_path):
    out = str(tmp_path / "out") + "/"
    r = cli.run("generate", "slashes", "--out", out)
    assert r.returncode == 0, r.stderr
    (path,) = r.stdout.split()
    assert "//" not in path and path.startswith(out), path
    tid = os.path.basename(path).split("-")[0]
    r = cli.run("download", tid, "--out", out + "/")
    assert r.returncode == 0 and "//" not in r.stdout, r.stdout


def test_completion_scripts(cli):
    for shell, marker in (("bash", "complete"), ("zsh", "compdef"), ("fish", "complete -c")):
        r = subprocess.run([cli.path, "--generate-completion-script", shell], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() and marker in r.stdout, (shell, r.stdout[:200])
        assert "generate" in r.stdout and "batch" in r.stdout
