"""Every apixo_code has its exception class, and each is raised by a real trigger."""

from __future__ import annotations

import socket
import threading
import uuid

import pytest

import apixo
from apixo import _native as N
from conftest import make_client


def uniq(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


CLASSES = {
    1: apixo.InvalidArgumentError, 2: apixo.BadRequestError, 3: apixo.AuthenticationError,
    4: apixo.PaymentRequiredError, 5: apixo.PermissionDeniedError, 6: apixo.NotFoundError,
    7: apixo.RateLimitError, 8: apixo.ServerError, 9: apixo.NetworkError,
    10: apixo.TimeoutError, 11: apixo.ProtocolError, 12: apixo.TaskFailedError,
    13: apixo.CancelledError, 14: apixo.ClosedError, 15: apixo.LocalIOError,
    16: apixo.NoMemoryError, 17: apixo.IndeterminateError,
}


def test_one_class_per_code_with_the_library_names():
    assert len(set(CLASSES.values())) == len(CLASSES)
    for code, cls in CLASSES.items():
        assert issubclass(cls, apixo.Error)
        assert cls.code == code
        assert cls.code_name == N.apixo_code_name(code).decode()
    assert issubclass(apixo.InvalidArgumentError, apixo.InvalidRequestError)
    assert issubclass(apixo.BadRequestError, apixo.InvalidRequestError)
    assert N.apixo_code_name(0).decode() == "APIXO_OK"


def test_invalid_argument(client, sim):
    prompt = uniq("x")
    with pytest.raises(apixo.InvalidArgumentError) as info:
        client.submit(prompt, max_images=42)
    assert "max_images" in str(info.value) and info.value.message == str(info.value)
    assert sim.submits(prompt) == 0


def test_bad_request(client, sim):
    sim.faults({"kind": "status", "status": 400, "endpoint": "generateTask"})
    with pytest.raises(apixo.BadRequestError) as info:
        client.submit(uniq("x"), max_images=1)
    assert isinstance(info.value, apixo.InvalidRequestError)


def test_authentication(sim):
    prompt = uniq("x")
    with make_client(sim, api_key="sk-wrong") as c:
        with pytest.raises(apixo.AuthenticationError) as info:
            c.submit(prompt, max_images=1)
    assert "sk-wrong" not in str(info.value)
    assert sim.submits(prompt) == 1  # a 401 is final: not retried


def test_payment_required(client, sim):
    sim.faults({"kind": "status", "status": 402, "endpoint": "generateTask"})
    with pytest.raises(apixo.PaymentRequiredError):
        client.submit(uniq("x"), max_images=1)


def test_forbidden(client, sim):
    sim.faults({"kind": "status", "status": 403, "endpoint": "generateTask"})
    with pytest.raises(apixo.PermissionDeniedError):
        client.submit(uniq("x"), max_images=1)


def test_not_found(client):
    with pytest.raises(apixo.NotFoundError):
        client.status("task_0123456789abcdef01234567")


def test_rate_limited_after_the_retry_budget(sim):
    prompt = uniq("x")
    sim.faults({"kind": "status", "status": 429, "endpoint": "generateTask", "count": 5,
                "retry_after": 0})
    with make_client(sim, max_retries=1) as c:
        with pytest.raises(apixo.RateLimitError):
            c.submit(prompt, max_images=1)
    # a 429 is certainly not accepted, so it may be retried: 1 try + 1 retry
    # (faulted requests are counted as fired faults, not as submits)
    stats = sim.stats()
    assert stats["faults"]["fired"].get("status") == 2
    assert stats["faults"]["queued"][0]["count"] == 3


def test_retry_after_is_honoured(sim):
    """Retry-After is the server's instruction in real seconds: the time scale does not
    shrink it."""
    import time

    sim.faults({"kind": "status", "status": 429, "endpoint": "generateTask", "retry_after": 1})
    with make_client(sim) as c:
        start = time.monotonic()
        c.submit(uniq("x"), max_images=1)
        elapsed = time.monotonic() - start
    assert elapsed >= 0.9, elapsed


def test_server_error_after_the_retry_budget(sim):
    with make_client(sim, max_retries=0) as c:
        tid = c.submit(uniq("x"), max_images=1)
        sim.faults({"kind": "status", "status": 500, "endpoint": "statusTask"})
        with pytest.raises(apixo.ServerError):
            c.status(tid)


def test_server_error_is_retried_for_gets(sim):
    with make_client(sim, max_retries=2) as c:
        tid = c.submit(uniq("x"), max_images=1)
        sim.faults({"kind": "status", "status": 503, "endpoint": "statusTask", "count": 2})
        assert c.status(tid).id == tid


def test_network(sim):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with make_client(sim, base_url=f"http://127.0.0.1:{port}/api/v1", max_retries=0) as c:
        with pytest.raises(apixo.NetworkError) as info:
            c.submit(uniq("x"), max_images=1)
    assert isinstance(info.value, ConnectionError)


def test_timeout(client):
    tid = client.submit(uniq("x"), max_images=1, resolution="3K")
    with pytest.raises(apixo.TimeoutError):
        client.wait(tid, timeout=0.01)


def test_queued_submit_waits_for_a_slot_and_generate_bounds_it(sim):
    """Past the concurrency cap a blocking submit waits in the local queue until a slot frees
    (the header); generate's deadline covers that queue and then fails having sent nothing."""
    import time

    with make_client(sim, max_concurrent_tasks=1) as c:
        first = c.submit(uniq("holds the only slot"), max_images=1, resolution="3K")
        prompt = uniq("queued")
        with pytest.raises(apixo.TimeoutError):
            c.generate(prompt, max_images=1, timeout=0.05)
        assert sim.submits(prompt) == 0
        # The slot frees when the first task is seen terminal (or has run as long as one would).
        c.wait(first, timeout=30)
        start = time.monotonic()
        second = c.submit(prompt, max_images=1)
        assert time.monotonic() - start < 5
        assert second
    assert sim.submits(prompt) == 1


def test_protocol(sim):
    with make_client(sim, max_retries=0) as c:
        tid = c.submit(uniq("x"), max_images=1)
        sim.faults({"kind": "malformed_json", "endpoint": "statusTask"})
        with pytest.raises(apixo.ProtocolError):
            c.status(tid)
    with make_client(sim) as c:
        with pytest.raises(apixo.ProtocolError):
            c.handle_webhook(b"this is not json")


def test_error_envelope_in_a_200_is_honoured(sim):
    with make_client(sim, max_retries=0) as c:
        tid = c.submit(uniq("x"), max_images=1)
        sim.faults({"kind": "error_envelope", "code": 404, "endpoint": "statusTask"})
        with pytest.raises(apixo.NotFoundError):
            c.status(tid)


def test_task_failed(client):
    with pytest.raises(apixo.TaskFailedError) as info:
        client.generate(uniq("[fail:INVALID_PROMPT] x"), max_images=1, timeout=30)
    assert info.value.fail_code == "INVALID_PROMPT"


def test_cancelled(client):
    tid = client.submit(uniq("x"), max_images=1, resolution="3K")
    got = []
    fired = threading.Event()
    client.watch(tid, lambda task, err: (got.append((task, err)), fired.set()))
    client.cancel(tid)
    assert fired.wait(10)
    ((task, err),) = got
    assert isinstance(err, apixo.CancelledError) and err.code == 13


def test_closed(sim):
    c = make_client(sim)
    got = []
    c.submit(uniq("x"), max_images=1, resolution="3K", on_done=lambda t, e: got.append(e))
    c.close()  # the callback fires before close returns
    assert len(got) == 1
    assert got[0] is None or isinstance(got[0], apixo.ClosedError)
    with pytest.raises(apixo.ClosedError):
        c.wait("task_x")


def test_local_io_journal_locked(sim, tmp_path):
    journal = tmp_path / "apixo.journal"
    with make_client(sim, journal=journal):
        with pytest.raises(apixo.LocalIOError) as info:
            make_client(sim, journal=journal)
    assert info.value.code == 15 and str(info.value)
    # unlocked again once the first client is closed
    make_client(sim, journal=journal).close()


def test_local_io_journal_unreadable(sim, tmp_path):
    with pytest.raises(apixo.LocalIOError):
        make_client(sim, journal=tmp_path / "no-such-dir" / "j")


def test_indeterminate_submit_is_not_resubmitted(sim):
    prompt = uniq("x")
    sim.faults({"kind": "reset_after_body", "endpoint": "generateTask"})
    with make_client(sim, max_retries=3) as c:
        with pytest.raises(apixo.IndeterminateError):
            c.submit(prompt, max_images=1)
    stats = sim.stats()
    assert stats["submits_by_prompt"].get(prompt) == 1
    assert stats["tasks_by_prompt"].get(prompt) == 1  # the task exists: paying twice avoided


def test_no_memory_is_mapped():
    # APIXO_ERR_NO_MEMORY cannot be provoked from Python; the mapping still holds
    err = apixo._errors.error_for_code(16, "out of memory")
    assert isinstance(err, apixo.NoMemoryError) and isinstance(err, MemoryError)


def test_unknown_future_code_is_a_plain_error():
    err = apixo._errors.error_for_code(99, "new")
    assert type(err) is apixo.Error and err.code == 99
