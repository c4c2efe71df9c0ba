"""Errors and tasks as values: they carry the task id, the snapshot and whether a task
was created; they pickle with every attribute; tasks compare and hash by value."""

from __future__ import annotations

import copy
import pickle
import uuid

import pytest

import apixo
from conftest import make_client, wait_until


def uniq(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def test_task_pickles_and_compares_by_value(client):
    task = client.generate(uniq("a value"), max_images=2, timeout=30)
    again = pickle.loads(pickle.dumps(task))
    assert again == task and hash(again) == hash(task) and again is not task
    assert again.to_dict() == task.to_dict() and again.urls == task.urls
    assert copy.copy(task) == task
    assert task == client.status(task.id)  # a second snapshot of the same terminal state
    assert len({task, again}) == 1
    with pytest.raises(apixo.ClosedError, match="unpickled"):
        again.save("/tmp")
    with pytest.raises(AttributeError):
        task.state = "failed"  # type: ignore[misc]


def test_task_failed_error_pickles_with_its_attributes(client):
    with pytest.raises(apixo.TaskFailedError) as info:
        client.generate(uniq("[fail:CONTENT_VIOLATION] x"), max_images=1, timeout=30)
    err = info.value
    assert err.task_id == err.task.id and err.submitted is True
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is apixo.TaskFailedError
    assert (back.fail_code, back.fail_message, back.message, back.task_id, back.submitted) == (
        err.fail_code, err.fail_message, err.message, err.task_id, err.submitted)
    assert back.task == err.task and str(back) == str(err)


@pytest.mark.parametrize("cls", [apixo.LocalIOError, apixo.NetworkError, apixo.TimeoutError,
                                 apixo.NoMemoryError, apixo.Error])
def test_every_error_pickles(cls):
    err = cls("boom", task_id="task_1", submitted=False)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == "boom"
    assert (back.task_id, back.submitted, back.code) == ("task_1", False, err.code)


def test_generate_timeout_carries_the_task_id(client, sim):
    prompt = uniq("slow")
    with pytest.raises(apixo.TimeoutError) as info:
        client.generate(prompt, max_images=1, resolution="3K", timeout=0.05)
    err = info.value
    assert err.task_id and err.task_id.startswith("task_") and err.submitted is True
    assert err.task is None or err.task.id == err.task_id
    # tracking stopped: the registration's cancellation is delivered on the dispatcher
    assert wait_until(lambda: client.stats().pending_callbacks == 0, 5)
    assert client.wait(err.task_id, timeout=30).succeeded  # it ran on: wait picks it up
    assert sim.submits(prompt) == 1


def test_a_timeout_in_the_local_queue_sent_nothing(sim):
    sim.config(concurrency=1)
    with make_client(sim, max_concurrent_tasks=1) as c:
        first = c.submit(uniq("holds the slot"), max_images=1, resolution="3K")
        prompt = uniq("queued")
        with pytest.raises(apixo.TimeoutError) as info:
            c.generate(prompt, max_images=1, timeout=0.2)
        assert info.value.submitted is False and info.value.task_id is None
        assert "local queue" in str(info.value)
        assert sim.submits(prompt) == 0
        c.wait(first, timeout=30)


def test_submit_errors_say_nothing_was_created(client, sim):
    sim.faults({"kind": "status", "status": 402, "endpoint": "generateTask"})
    with pytest.raises(apixo.PaymentRequiredError) as info:
        client.submit(uniq("x"), max_images=1)
    assert info.value.submitted is False and info.value.task_id is None


def test_stats_count_queued_in_flight_and_requests(sim):
    sim.config(concurrency=2)
    with make_client(sim, max_concurrent_tasks=2) as c:
        assert c.stats() == apixo.Stats(0, 0, 0, 0, 0)
        done = []
        for i in range(4):
            c.submit(uniq(f"stats {i}"), max_images=1, on_done=lambda t, e: done.append(e))
        assert wait_until(lambda: c.stats().in_flight == 2)
        s = c.stats()
        assert s.queued == 2 and s.pending_callbacks == 4 and s.requests_in_window >= 2
        c.drain(timeout=60)
        assert done == [None] * 4
        s = c.stats()
        assert (s.queued, s.pending_callbacks) == (0, 0) and s.requests_in_window >= 4
