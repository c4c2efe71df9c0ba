"""Each command of the real binary against apixo-sim: output on stdout, progress on stderr."""

import json
import os
import re
import subprocess
import time

from conftest import KEY, SCALE, run_pty

JPEG = b"\xff\xd8\xff"
PNG = b"\x89PNG\r\n\x1a\n"
TASK_ID = re.compile(r"^task_[0-9a-f]+$")


def magic(path, n=8):
    with open(path, "rb") as f:
        return f.read(n)


def test_help_lists_commands_and_exit_codes(cli):
    r = subprocess.run([cli.path, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("generate", "submit", "status", "wait", "download", "batch", "APIXO_API_KEY", "APIXO_BASE_URL"):
        assert word in r.stdout
    codes = re.findall(r"^\s+(\d+)\s{2,}", r.stdout.split("EXIT CODES", 1)[1], re.M)
    assert codes == ["0", "1", "2", "3", "4", "5", "6", "7", "8", "130"]
    r = subprocess.run([cli.path, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and re.match(r"^\d+\.\d+\.\d+$", r.stdout.strip())
    for sub in ("generate", "batch"):
        r = subprocess.run([cli.path, sub, "--help"], capture_output=True, text=True)
        assert r.returncode == 0
        for opt in ("--api-key", "--base-url", "--time-scale", "--rpm", "--max-tasks", "--json", "--quiet"):
            assert opt in r.stdout


def test_generate_prints_saved_paths(cli, tmp_path):
    out = tmp_path / "imgs"
    r = cli.run("generate", "a red fox in the snow", "--max-images", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    paths = r.stdout.split()
    assert len(paths) == 2
    for p in paths:
        assert os.path.dirname(p) == str(out)
        assert magic(p, 3) == JPEG
    # Not a terminal: plain progress lines on stderr, no escape sequences.
    assert "success" in r.stderr and "\x1b" not in r.stderr and "\r" not in r.stderr
    assert cli.sim.stats()["submits_by_prompt"] == {"a red fox in the snow": 1}


def test_generate_options_reach_the_request(cli, tmp_path):
    r = cli.run("generate", "options", "--max-images", "3", "--resolution", "3K", "--aspect-ratio", "16:9",
                "--format", "png", "--web-search", "--provider", "value", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "success" and TASK_ID.match(doc["taskId"])
    assert len(doc["paths"]) == 3 and all(p.endswith(".png") and magic(p) == PNG for p in doc["paths"])
    assert len(doc["resultUrls"]) == 3


def test_generate_sequential_and_images(cli, tmp_path):
    r = cli.run("generate", "a series", "--sequential", "--max-images", "4",
                "--image", "https://example.com/a.png", "--image", "https://example.com/b.jpg",
                "--out", str(tmp_path), "--json", "--quiet")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert 1 <= len(doc["paths"]) <= 4          # auto: a coherent series of up to max_images
    assert r.stderr == ""                        # --quiet


def test_submit_status_wait_download(cli, tmp_path):
    r = cli.run("submit", "step by step")
    assert r.returncode == 0, r.stderr
    tid = r.stdout.strip()
    assert TASK_ID.match(tid)

    r = cli.run("status", tid)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == tid and r.stdout.split()[1] in ("pending", "processing", "success")

    r = cli.run("wait", tid)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0] == tid + " success" and lines[1].startswith(cli.sim.url + "/files/")

    r = cli.run("status", tid, "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["taskId"] == tid and doc["state"] == "success" and doc["costTime"] > 0

    r = cli.run("download", tid, "--out", str(tmp_path / "dl"))
    assert r.returncode == 0, r.stderr
    (path,) = r.stdout.split()
    assert path == str(tmp_path / "dl" / (tid + "-1.jpg")) and magic(path, 3) == JPEG

    r = cli.run("submit", "json submit", "--json")
    doc = json.loads(r.stdout)
    assert TASK_ID.match(doc["taskId"]) and doc["model"] == "seedream-5-0"
    # download waits for a task that is still running
    r = cli.run("download", doc["taskId"], "--out", str(tmp_path / "dl2"), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["paths"][0].startswith(str(tmp_path / "dl2"))


def test_wait_adds_no_busy_polling(cli):
    """Redrawing progress every 250 ms must not turn into a poll every 250 ms."""
    cli.sim.config(time_scale=0.1)               # tasks take about 3 s
    tid = cli.run("submit", "slow one", scale=0.1).stdout.strip()
    r = cli.run("wait", tid, scale=0.1)
    assert r.returncode == 0, r.stderr
    polls = cli.sim.stats()["polls"][tid]
    assert polls <= 6, polls


def test_progress_line_on_a_terminal(cli, tmp_path):
    cli.sim.config(time_scale=0.05)
    code, text = run_pty([cli.path, "generate", "tty", "--out", str(tmp_path), "--time-scale", "0.05"], cli.env())
    assert code == 0
    assert "\r\x1b[K" in text                     # redrawn in place
    assert "elapsed" in text and "left" in text   # elapsed and expected remaining time
    assert str(tmp_path) in text                  # the saved path


def test_failed_task_exit_5(cli, tmp_path):
    r = cli.run("generate", "no [fail:CONTENT_VIOLATION]", "--out", str(tmp_path))
    assert r.returncode == 5
    assert "CONTENT_VIOLATION" in r.stderr and r.stdout == ""
    r = cli.run("generate", "no [fail:NSFW_DETECTED]", "--json")
    assert r.returncode == 5
    doc = json.loads(r.stdout)
    assert doc["state"] == "failed" and doc["failCode"] == "NSFW_DETECTED"
    tid = cli.run("submit", "later [fail:GENERATION_FAILED]").stdout.strip()
    assert cli.run("wait", tid).returncode == 5
    assert cli.run("download", tid, "--out", str(tmp_path)).returncode == 5
    r = cli.run("status", tid)
    assert r.returncode == 0 and "failed GENERATION_FAILED" in r.stdout
    assert os.listdir(tmp_path) == []
