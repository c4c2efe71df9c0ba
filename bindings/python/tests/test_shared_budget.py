"""Client(shared_budget=...): validated at once; an unreachable Redis never fails a call
(the client goes on with its share of the limits and says so in the log). The multi-process
behaviour is tested in Tests/redis (make test-redis)."""

import logging
import socket

import pytest

import apixo

from conftest import make_client


def test_a_malformed_url_is_refused_at_once(sim):
    for bad in ["http://redis", "redis://h:99999", "redis://:@h"]:
        with pytest.raises(apixo.InvalidArgumentError, match="shared budget URL"):
            make_client(sim, shared_budget=bad)
    with pytest.raises(apixo.InvalidArgumentError, match="namespace"):
        make_client(sim, shared_budget="redis://127.0.0.1", shared_budget_namespace="has space")


def test_an_unreachable_redis_falls_back_and_says_so(sim, caplog):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with caplog.at_level(logging.WARNING, logger="apixo"):
        with make_client(sim, shared_budget="redis://127.0.0.1:%d" % port) as c:
            task = c.generate("a lighthouse in fog", max_images=1, timeout=60)
            assert task.state == "success"
    assert any("going on with a local share" in r.getMessage() for r in caplog.records), caplog.text
