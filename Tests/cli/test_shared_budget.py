"""--shared-budget: validated before anything is sent; against a real redis-server the
account's budget lives there (under a namespace that hides the key); an unreachable Redis
never fails the command."""

import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "redis"))
from redis_harness import Redis, keys as redis_keys  # noqa: E402

from conftest import KEY  # noqa: E402


def test_a_bad_url_is_refused_before_anything_is_sent(cli, tmp_path):
    r = cli.run("generate", "x", "--max-images", "1", "--out", str(tmp_path), "--shared-budget", "http://nope")
    assert r.returncode == 2, r.stderr
    assert "shared budget URL" in r.stderr
    assert cli.sim.stats()["submits_by_prompt"] == {}


def test_the_budget_lives_in_redis(cli, tmp_path):
    redis = Redis()
    try:
        r = cli.run("generate", "a shared fox", "--max-images", "1", "--out", str(tmp_path),
                    "--shared-budget", redis.url)
        assert r.returncode == 0, r.stderr
        keys = redis_keys(redis.port)
        assert any(k.startswith("apixo:") and k.endswith(":rate") for k in keys), keys
        assert not any(KEY in k for k in keys), "the API key never goes to Redis"
    finally:
        redis.stop()


def test_an_unreachable_redis_does_not_fail_the_command(cli, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli.run("generate", "a lone fox", "--max-images", "1", "--out", str(tmp_path), "--verbose",
                "--shared-budget", "redis://127.0.0.1:%d" % port)
    assert r.returncode == 0, r.stderr
    assert "going on with a local share" in r.stderr
