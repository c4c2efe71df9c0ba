"""on_done callbacks: exactly once, on the dispatcher thread, exceptions contained."""

from __future__ import annotations

import gc
import logging
import threading
import uuid

import pytest

import apixo
from conftest import make_client, wait_until


def uniq(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


class Recorder:
    def __init__(self) -> None:
        self.calls = []
        self.threads = set()
        self.lock = threading.Lock()

    def __call__(self, task, error) -> None:
        with self.lock:
            self.calls.append((task, error))
            self.threads.add(threading.get_ident())


def test_submit_on_done_fires_once_on_the_dispatcher_thread(client, sim):
    rec = Recorder()
    prompts = [uniq(f"cb {i}") for i in range(5)]
    for p in prompts:
        assert client.submit(p, max_images=1, tag=p, on_done=rec) is None
    gc.collect()  # nothing the C side calls may be collected meanwhile
    client.drain(timeout=30)
    assert len(rec.calls) == 5
    assert {t.tag for t, _ in rec.calls} == set(prompts)
    assert all(e is None and t.succeeded and t.urls for t, e in rec.calls)
    assert threading.get_ident() not in rec.threads and len(rec.threads) == 1
    assert all(sim.submits(p) == 1 for p in prompts)
    client.drain(timeout=1)
    assert len(rec.calls) == 5


def test_failed_task_reaches_on_done_as_task_failed(client):
    rec = Recorder()
    client.submit(uniq("[fail:GENERATION_FAILED] x"), max_images=1, on_done=rec)
    client.drain(timeout=30)
    ((task, err),) = rec.calls
    assert isinstance(err, apixo.TaskFailedError)
    assert err.fail_code == "GENERATION_FAILED" and task.fail_code == "GENERATION_FAILED"
    assert err.task is task


def test_submit_error_reaches_on_done_with_a_stand_in_task(sim):
    rec = Recorder()
    with make_client(sim, api_key="sk-wrong") as c:
        c.submit(uniq("x"), max_images=1, on_done=rec)
        c.drain(timeout=30)
    ((task, err),) = rec.calls
    # A failed submit hands over a stand-in: no id, the request's model (and tag).
    assert isinstance(err, apixo.AuthenticationError)
    assert task is not None and not task.id and task.model == "seedream-5-0" and task.state == "pending"


def test_invalid_request_raises_at_once_and_never_calls_back(client):
    rec = Recorder()
    with pytest.raises(apixo.InvalidArgumentError):
        client.submit(uniq("x"), max_images=99, on_done=rec)
    with pytest.raises(TypeError):
        client.submit(uniq("x"), max_images=1, on_done="not callable")
    client.drain(timeout=5)
    assert rec.calls == []


def test_exceptions_in_callbacks_are_logged_and_contained(client, caplog):
    caplog.set_level(logging.ERROR, logger="apixo")
    after = Recorder()

    def boom(task, err):
        raise RuntimeError("user bug")

    def exit_(task, err):
        raise SystemExit(3)

    client.submit(uniq("a"), max_images=1, on_done=boom)
    client.submit(uniq("b"), max_images=1, on_done=exit_)
    client.submit(uniq("c"), max_images=1, on_done=after)
    client.drain(timeout=30)
    assert len(after.calls) == 1 and after.calls[0][1] is None
    messages = [r for r in caplog.records if "on_done" in r.getMessage()]
    assert len(messages) == 2
    assert any("user bug" in (r.exc_text or "") for r in messages)


def test_watch_an_existing_task(client):
    tid = client.submit(uniq("watched"), max_images=2)
    rec = Recorder()
    client.watch(tid, rec)
    client.drain(timeout=30)
    ((task, err),) = rec.calls
    assert err is None and task.id == tid and len(task.urls) == 2


def test_watch_a_task_submitted_by_another_client(sim):
    """A task this client did not submit (another process, an earlier run) is polled
    until it ends, even when the first poll finds it still running."""
    with make_client(sim) as other:
        tid = other.submit(uniq("elsewhere"), max_images=1, resolution="3K")
    rec = Recorder()
    with make_client(sim) as c:
        c.watch(tid, rec)
        c.drain(timeout=10)
    ((task, err),) = rec.calls
    assert err is None and task.id == tid and task.succeeded
    assert sim.stats()["polls"][tid] >= 2


def test_watch_unknown_task_reports_not_found(client):
    rec = Recorder()
    client.watch("task_0123456789abcdef01234567", rec)
    client.drain(timeout=30)
    ((task, err),) = rec.calls
    assert isinstance(err, apixo.NotFoundError)


def test_cancel_then_cancel_again(client):
    tid = client.submit(uniq("cancel me"), max_images=1, resolution="3K")
    rec = Recorder()
    client.watch(tid, rec)
    client.cancel(tid)
    client.drain(timeout=10)
    assert isinstance(rec.calls[0][1], apixo.CancelledError)
    with pytest.raises(apixo.NotFoundError):
        client.cancel(tid)
    # the task still runs on the server; a blocking wait is unaffected
    assert client.wait(tid, timeout=30).succeeded


def test_drain_timeout(client):
    client.submit(uniq("slow"), max_images=1, resolution="3K", on_done=Recorder())
    with pytest.raises(apixo.TimeoutError):
        client.drain(timeout=0)
    client.drain(timeout=30)


def test_callbacks_may_use_the_client(client):
    """A callback may submit more work (non-blocking) and read tasks."""
    rec = Recorder()
    chained = threading.Event()

    def first(task, err):
        client.submit(uniq("second"), max_images=1, on_done=lambda t, e: (rec(t, e), chained.set()))

    client.submit(uniq("first"), max_images=1, on_done=first)
    assert chained.wait(30)
    assert rec.calls[0][1] is None


def test_drain_and_close_are_refused_inside_a_callback(client):
    outcome = []
    done = threading.Event()

    def cb(task, err):
        try:
            client.drain(timeout=1)
        except apixo.InvalidArgumentError:
            outcome.append("drain refused")
        try:
            client.close()
        except RuntimeError:
            outcome.append("close refused")
        done.set()

    client.submit(uniq("x"), max_images=1, on_done=cb)
    assert done.wait(30)
    assert outcome == ["drain refused", "close refused"]
    assert not client.closed


def test_close_fires_pending_callbacks_with_closed(sim):
    c = make_client(sim, max_concurrent_tasks=1)
    rec = Recorder()
    for i in range(4):
        c.submit(uniq(f"pending {i}"), max_images=1, resolution="3K", on_done=rec)
    c.close()
    assert len(rec.calls) == 4  # all fired before close() returned
    assert any(isinstance(e, apixo.ClosedError) for _, e in rec.calls)
    for task, err in rec.calls:
        assert err is None or isinstance(err, apixo.ClosedError)


def test_task_from_callback_can_be_saved_later(client, tmp_path):
    rec = Recorder()
    client.submit(uniq("keep"), max_images=1, on_done=rec)
    client.drain(timeout=30)
    task = rec.calls[0][0]
    gc.collect()
    (path,) = task.save(tmp_path)
    assert path.endswith(".jpg")


def test_dropping_the_last_reference_inside_a_callback(sim):
    """A Client whose last reference dies in its own callback closes from another thread."""
    done = threading.Event()
    c = make_client(sim)
    holder = {"c": c}

    def cb(task, err):
        holder.clear()
        done.set()

    c.submit(uniq("x"), max_images=1, on_done=cb)
    del c
    assert done.wait(30)
    gc.collect()
    assert wait_until(lambda: True)
