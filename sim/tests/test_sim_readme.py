"""The copy-paste curl quickstart in sim/README.md works against the simulator."""

import json
import os
import re
import shutil
import subprocess

import pytest

from simtest import SIM_DIR


def quickstart_commands():
    """The curl commands of the quickstart block: paragraphs (split at blank lines) that start
    with `curl`, comment lines dropped."""
    text = open(os.path.join(SIM_DIR, "README.md"), encoding="utf-8").read()
    block = text.split("<!-- quickstart:start -->", 1)[1].split("<!-- quickstart:end -->", 1)[0]
    code = block.split("```bash", 1)[1].split("```", 1)[0]
    cmds = []
    for para in code.split("\n\n"):
        lines = [ln for ln in para.strip().splitlines() if not ln.startswith("#")]
        if lines and lines[0].startswith("curl "):
            cmds.append("\n".join(lines))
    return cmds


def test_readme_quickstart_with_curl(sim):
    if not shutil.which("curl"):
        pytest.skip("curl not installed")
    post, get = quickstart_commands()
    assert "generateTask/seedream-5-0" in post and "statusTask/seedream-5-0" in get
    post = post.replace("http://127.0.0.1:8080", sim.url)
    out = subprocess.run(["bash", "-c", post + " -sS"], capture_output=True, text=True, timeout=30)
    env = json.loads(out.stdout)
    assert env["code"] == 200 and env["message"] == "success"
    tid = env["data"]["taskId"]
    get = re.sub(r"task_[0-9a-f]+", tid, get.replace("http://127.0.0.1:8080", sim.url))
    out = subprocess.run(["bash", "-c", get + " -sS"], capture_output=True, text=True, timeout=30)
    env = json.loads(out.stdout)
    assert env["code"] == 200 and env["data"]["taskId"] == tid
    assert env["data"]["state"] in ("pending", "processing", "success")
    d = sim.wait(tid)
    url = json.loads(d["resultJson"])["resultUrls"][0]
    out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{content_type}",
                          url], capture_output=True, text=True, timeout=30)
    assert out.stdout == "200 image/jpeg"
