"""Point 1: start-up, options, clean exit on signals; --seed reproducibility (point 5)."""

import signal
import subprocess
import sys

import pytest

from simtest import SIM_SCRIPT, wait_until


def test_banner_port0_and_defaults(sim_factory):
    p = sim_factory()
    assert p.banner == "apixo-sim listening on http://127.0.0.1:%d\n" % p.port
    assert p.port > 0
    cfg = p.sim("GET", "config")
    assert cfg["rpm"] == 60 and cfg["concurrency"] == 10
    assert cfg["time_scale"] == 1.0 and cfg["url_ttl"] == 1296000
    assert cfg["small_images"] is False and cfg["keys"] == 1
    # the default key is sk-sim
    assert p.status("task_0").status == 404
    assert p.status("task_0", key="other").status == 401


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_exit_cleanly(sim_factory, sig):
    p = sim_factory()
    c = p.conn()                      # an open keep-alive connection must not hold it up
    c.request("GET", "/_sim/stats")
    c.getresponse().read()
    assert p.stop(sig) == 0
    assert "Traceback" not in p.stderr_text()
    c.close()


def test_options_are_applied(sim_factory):
    p = sim_factory("--keys", "k1,k2", "--rpm", "7", "--concurrency", "3", "--time-scale",
                    "0.5", "--url-ttl", "99", "--small-images", "--seed", "42")
    cfg = p.sim("GET", "config")
    assert (cfg["rpm"], cfg["concurrency"], cfg["time_scale"], cfg["url_ttl"],
            cfg["small_images"], cfg["seed"], cfg["keys"]) == (7, 3, 0.5, 99, True, 42, 2)
    assert p.status("task_0", key="k1").status == 404
    assert p.status("task_0", key="k2").status == 404
    assert p.status("task_0", key="sk-sim").status == 401


@pytest.mark.parametrize("args", [["--rpm", "-1"], ["--time-scale", "0"], ["--port", "70000"],
                                  ["--keys", ","], ["--url-ttl", "nan"], ["--bogus"]])
def test_bad_options_are_rejected(args):
    out = subprocess.run([sys.executable, SIM_SCRIPT] + args, capture_output=True, timeout=30)
    assert out.returncode == 2
    assert out.stdout == b""


def test_port_in_use_is_reported(sim_factory):
    p = sim_factory()
    out = subprocess.run([sys.executable, SIM_SCRIPT, "--port", str(p.port)],
                         capture_output=True, timeout=30)
    assert out.returncode == 2 and b"cannot listen" in out.stderr


def _run_sequence(p):
    ids = [p.submit_ok({"max_images": 10, "sequential_image_generation": "auto"}),
           p.submit_ok({"resolution": "3K"}),
           p.submit_ok({"prompt": "x [fail:GENERATION_FAILED]"})]
    out = []
    for tid in ids:
        d = p.wait(tid)
        out.append((tid, d["state"], d["costTime"], d.get("resultJson", "").count("/files/")))
    return out


def test_seed_makes_runs_reproducible(sim_factory):
    a = sim_factory("--seed", "7", "--time-scale", "0.01", "--small-images", "--rpm", "0")
    b = sim_factory("--seed", "7", "--time-scale", "0.01", "--small-images", "--rpm", "0")
    c = sim_factory("--seed", "8", "--time-scale", "0.01", "--small-images", "--rpm", "0")
    ra, rb, rc = _run_sequence(a), _run_sequence(b), _run_sequence(c)
    assert ra == rb
    assert [x[0] for x in ra] != [x[0] for x in rc]


def test_stdout_banner_is_flushed_at_once():
    # the banner must arrive while the process keeps running (not at exit)
    proc = subprocess.Popen([sys.executable, SIM_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("apixo-sim listening on http://127.0.0.1:")
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_ipv6_loopback_if_available(sim_factory):
    import socket
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    p = sim_factory("--host", "::1")
    assert p.banner == "apixo-sim listening on http://[::1]:%d\n" % p.port
    wait_until(lambda: p.stats()["connections_accepted"] >= 1, what="stats over IPv6")
