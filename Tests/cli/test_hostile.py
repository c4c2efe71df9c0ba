"""The CLI against a hostile server (a local http.server thread): absurd numbers, a huge
Retry-After, the API key echoed back. The binary must answer with its documented exit codes,
within bounds, and never print the key."""

import http.server
import json
import threading
import time

import pytest

from conftest import api_requests

KEY = "sk-cli-hostile-7f3a9c0e2b"


class Hostile(http.server.BaseHTTPRequestHandler):
    answers = {}  # task id -> (status, headers, body)

    def do_GET(self):  # noqa: N802 - the http.server API
        task = self.path.split("taskId=")[-1]
        status, headers, body = self.answers.get(task, (404, {}, {"code": 404, "message": "no such task"}))
        raw = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


@pytest.fixture
def hostile():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d/api/v1" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def status(task, **data):
    return {"code": 200, "message": "success", "data": dict({"taskId": task}, **data)}


def test_absurd_times_do_not_crash_status(cli, hostile):
    Hostile.answers["task_t"] = (200, {}, status("task_t", state="processing", createTime=1e300, costTime=1e19))
    r = cli.run("status", "task_t", "--json", key=KEY, base=hostile)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "processing"


def test_huge_retry_after_ends_at_once(cli, hostile):
    Hostile.answers["task_r"] = (429, {"Retry-After": "10000000000000000"}, {"code": 429, "message": "slow down"})
    t0 = time.monotonic()
    r = cli.run("status", "task_r", key=KEY, base=hostile, timeout=60)
    assert r.returncode == 4, r.stderr
    assert time.monotonic() - t0 < 30
    assert "Retry-After" in r.stderr


def test_echoed_key_is_never_printed(cli, hostile):
    Hostile.answers["task_k"] = (401, {"X-Echo": "Bearer " + KEY},
                                 {"code": 401, "message": "bad key Bearer " + KEY + "\nsecond line"})
    Hostile.answers["task_f"] = (200, {}, status("task_f", state="failed", failCode="X", failMsg="sent " + KEY,
                                                 echo="Bearer " + KEY))
    for task in ("task_k", "task_f"):
        r = cli.run("status", task, "--json", key=KEY, base=hostile)
        assert KEY not in r.stdout + r.stderr, task
    r = cli.run("status", "task_k", key=KEY, base=hostile)
    assert r.returncode == 3
    assert "[redacted]" in r.stderr
    assert "second line" in r.stderr and "\nsecond line" not in r.stderr


def test_an_endless_or_huge_batch_input_is_refused(cli, tmp_path):
    """`batch /dev/zero` (or an endless stdin) stops at the 256 MiB input cap with exit 2 and a
    one-line message, having sent nothing; it does not read until memory runs out."""
    for args, stdin in ((["batch", "/dev/zero"], None), (["batch", "-"], "/dev/zero")):
        t0 = time.monotonic()
        if stdin:
            with open(stdin, "rb") as f:
                r = cli.run(*args, "--out", str(tmp_path / "o"), stdin=f)
        else:
            r = cli.run(*args, "--out", str(tmp_path / "o"))
        assert r.returncode == 2, r.stderr
        assert "larger than 256 MiB" in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert time.monotonic() - t0 < 60
    assert api_requests(cli.sim.stats()) == 0
