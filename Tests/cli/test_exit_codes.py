"""Every documented exit code, from the real binary against apixo-sim."""

import json
import os
import signal
import socket
import time

from conftest import KEY, wait_for


def sent(sim):
    return sim.stats()["requests"].get("generateTask", {})


def test_0_success(cli, tmp_path):
    assert cli.run("generate", "fine", "--out", str(tmp_path)).returncode == 0


def test_2_usage_errors(cli):
    r = cli.run("generate")                                   # missing prompt
    assert r.returncode == 2 and "prompt" in r.stderr
    r = cli.run("frobnicate")
    assert r.returncode == 2
    r = cli.run("generate", "x", "--max-images", "many")
    assert r.returncode == 2
    r = cli.run("wait", "task_x", "--timeout", "-1")
    assert r.returncode == 2


def test_2_invalid_request_sends_nothing(cli):
    for args in (["--max-images", "11"], ["--resolution", "5K"], ["--aspect-ratio", "5:4"],
                 ["--format", "gif"], ["--image", "ftp://x/y.png"], ["--provider", "cheapest"]):
        r = cli.run("generate", "bad", *args)
        assert r.returncode == 2, (args, r.stderr)
        assert "apixo: error:" in r.stderr
    r = cli.run("generate", "bad", "--max-images", "0", "--json")
    assert r.returncode == 2
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "APIXO_ERR_INVALID_ARGUMENT" and "max_images" in err["message"] and err["exitCode"] == 2
    assert set(cli.sim.stats()["requests"]) <= {"sim"}


def test_2_server_rejections(cli):
    r = cli.run("status", "task_0000")                        # unknown task: 404
    assert r.returncode == 2 and "not found" in r.stderr.lower()
    r = cli.run("submit", "x", "--model", "no-such-model")    # unknown model: 404
    assert r.returncode == 2
    cli.sim.faults({"kind": "status", "status": 400, "endpoint": "generateTask"})
    r = cli.run("submit", "x")                                # 400 from the server
    assert r.returncode == 2


def test_3_authentication_and_the_key_is_never_printed(cli):
    secret = "sk-very-secret-0123456789"
    for args in (["generate", "x", "--api-key", secret, "--verbose", "--json"],
                 ["status", "task_1", "--api-key", secret, "--verbose"]):
        r = cli.run(*args)
        assert r.returncode == 3, r.stderr
        assert secret not in r.stdout and secret not in r.stderr
    r = cli.run("generate", "x", key=secret, env=None)
    assert r.returncode == 3 and secret not in r.stdout + r.stderr
    r = cli.run("submit", "x", key=None)                      # no key at all
    assert r.returncode == 3 and "APIXO_API_KEY" in r.stderr
    # The right key works and is not printed either, even with --verbose.
    r = cli.run("generate", "ok", "--verbose", "--out", str(cli.tmp))
    assert r.returncode == 0 and KEY not in r.stdout + r.stderr
    for code in (402, 403):
        cli.sim.faults({"kind": "status", "status": code, "endpoint": "generateTask"})
        assert cli.run("submit", "x").returncode == 3


def test_4_rate_limited(cli):
    cli.sim.faults({"kind": "status", "status": 429, "endpoint": "generateTask", "count": 20})
    r = cli.run("submit", "limited", "--json")
    assert r.returncode == 4, r.stderr
    assert json.loads(r.stdout)["error"]["code"] == "APIXO_ERR_RATE_LIMITED"


def test_5_task_failed(cli):
    r = cli.run("generate", "x [fail:SensitiveContentDetected]")
    assert r.returncode == 5 and "SensitiveContentDetected" in r.stderr


def test_6_network_server_timeout(cli, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                                 # nothing listens there
    r = cli.run("submit", "x", base="http://127.0.0.1:%d/api/v1" % port)
    assert r.returncode == 6, r.stderr
    cli.sim.faults({"kind": "status", "status": 500, "endpoint": "statusTask", "count": 20})
    r = cli.run("status", "task_1")
    assert r.returncode == 6, r.stderr
    cli.sim.reset()
    cli.sim.config(time_scale=1.0)                            # tasks take 25 to 35 s
    r = cli.run("generate", "slow", "--timeout", "0.5", "--out", str(tmp_path), scale=1.0)
    assert r.returncode == 6, r.stderr
    assert "apixo wait task_" in r.stderr                     # says how to pick it up again


def test_6_generate_timeout_covers_the_local_queue(cli, tmp_path):
    """--timeout bounds the wait in the local queue too. The first submit is refused (429, no
    task) with a Retry-After of 30 s, so the retry waits in the local queue; at the deadline the
    command gives up there: the retry is never sent and no task exists."""
    cli.sim.faults({"kind": "status", "status": 429, "endpoint": "generateTask", "count": 5, "retry_after": 30})
    started = time.monotonic()
    r = cli.run("generate", "held back", "--timeout", "1", "--out", str(tmp_path / "o"), "--json")
    assert time.monotonic() - started < 10
    assert r.returncode == 6, r.stderr
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "APIXO_ERR_TIMEOUT" and err["exitCode"] == 6
    assert "local queue" in err["message"] and "no task exists" in err["message"]
    assert "apixo wait" not in r.stderr                       # there is nothing to wait for
    st = cli.sim.stats()
    assert st["submits_by_prompt"] == {"held back": 1}        # the refused attempt; nothing after it
    assert st["tasks_created"] == 0
    assert not os.path.exists(tmp_path / "o") or os.listdir(tmp_path / "o") == []


def test_7_indeterminate_submit_is_not_resent(cli):
    cli.sim.faults({"kind": "reset_after_body", "endpoint": "generateTask"})
    r = cli.run("submit", "lost answer", "--json")
    assert r.returncode == 7, r.stderr
    assert json.loads(r.stdout)["error"]["code"] == "APIXO_ERR_INDETERMINATE"
    assert cli.sim.stats()["submits_by_prompt"] == {"lost answer": 1}


def test_8_local_file_error(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = cli.run("generate", "x", "--out", str(blocker / "sub"))
    assert r.returncode == 8, r.stderr


def _interrupt(cli, sig, expect):
    cli.sim.config(time_scale=1.0)
    p = cli.start("generate", "long", "--out", str(cli.tmp), scale=1.0)
    assert wait_for(lambda: cli.sim.stats()["tasks_created"] == 1, 10)
    time.sleep(0.3)
    p.send_signal(sig)
    out, err = p.communicate(timeout=10)
    assert p.returncode == expect, err
    assert "apixo wait task_" in err


def test_130_interrupted(cli):
    _interrupt(cli, signal.SIGINT, 130)


def test_143_terminated(cli):
    _interrupt(cli, signal.SIGTERM, 143)
