"""Webhooks end to end: a real local HTTP server receives the simulator's deliveries
(including repeats) and hands them to Client.handle_webhook."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import apixo
from conftest import make_client, wait_until


def uniq(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


class Receiver:
    """Answers 500 to the first delivery of each task (so the simulator repeats it)
    and 200 afterwards; every delivery is handed to the client first."""

    def __init__(self, client: apixo.Client) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.deliveries: Counter = Counter()
        self.outcomes = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    tid = json.loads(body)["data"]["taskId"]
                except (ValueError, KeyError, TypeError):
                    tid = None
                with receiver.lock:
                    receiver.deliveries[tid] += 1
                    n = receiver.deliveries[tid]
                try:
                    task = receiver.client.handle_webhook(body)
                    outcome = ("ok", task.id, task.state)
                except apixo.Error as exc:
                    outcome = (type(exc).__name__, tid, None)
                with receiver.lock:
                    receiver.outcomes.append(outcome)
                status = 500 if n == 1 else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/apixo/webhook" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_deliveries_and_repeats_fire_on_done_exactly_once(sim):
    client = make_client(sim)
    receiver = Receiver(client)
    calls = Counter()
    errors = []
    lock = threading.Lock()

    def on_done(task, err):
        with lock:
            calls[task.tag if task else None] += 1
            if err is not None:
                errors.append(err)

    try:
        tags = [uniq(f"hook {i}") for i in range(3)]
        for tag in tags:
            client.submit(tag, max_images=1, tag=tag, callback_url=receiver.url, on_done=on_done)

        def all_redelivered():
            by_task = sim.stats()["webhooks"]["by_task"]
            return len(by_task) == 3 and all(r["delivered"] for r in by_task.values())

        assert wait_until(all_redelivered, timeout=30)
        client.drain(timeout=30)
        assert errors == []
        assert dict(calls) == {t: 1 for t in tags}
        by_task = sim.stats()["webhooks"]["by_task"]
        for rec in by_task.values():
            assert rec["outcomes"][:2] == ["500", "200"] and rec["attempts"] == 2
        assert all(n == 2 for n in receiver.deliveries.values())
        # both deliveries of each task were accepted by the client (a repeat is APIXO_OK)
        assert len(receiver.outcomes) == 6
        assert all(o[0] == "ok" and o[2] == "success" for o in receiver.outcomes)
        time.sleep(0.05)
        assert dict(calls) == {t: 1 for t in tags}
    finally:
        client.close()
        receiver.close()


def _status(tid: str, state: str = "success", **extra) -> dict:
    data = {"taskId": tid, "state": state, "createTime": 1700000000000}
    if state == "success":
        data.update(resultJson=json.dumps({"resultUrls": ["https://cdn.example/x-1.png"]}),
                    costTime=1234, completeTime=1700000001234)
    if state == "failed":
        data.update(failCode="CONTENT_VIOLATION", failMsg="nope", completeTime=1700000001234)
    data.update(extra)
    return data


def test_a_webhook_completes_a_tracked_task_before_any_poll(client):
    tid = client.submit(uniq("hooked"), max_images=1, resolution="3K")
    got = []
    fired = threading.Event()
    client.watch(tid, lambda t, e: (got.append((t, e)), fired.set()))
    body = json.dumps({"code": 200, "message": "success", "data": _status(tid)})
    task = client.handle_webhook(body.encode())
    assert task.id == tid and task.state == "success"
    assert task.urls == ("https://cdn.example/x-1.png",)
    assert fired.wait(5)
    ((t, e),) = got
    assert e is None and t.urls == ("https://cdn.example/x-1.png",) and t.cost_time_ms == 1234
    # a repeat is recognised: APIXO_OK, nothing fires again
    assert client.handle_webhook(body).state == "success"
    client.drain(timeout=5)
    assert len(got) == 1


def test_bare_status_object_and_failed_delivery(client):
    tid = client.submit(uniq("hooked"), max_images=1, resolution="3K")
    got = []
    client.watch(tid, lambda t, e: got.append((t, e)))
    task = client.handle_webhook(json.dumps(_status(tid, "failed")))
    assert task.failed and task.fail_code == "CONTENT_VIOLATION"
    client.drain(timeout=5)
    ((t, e),) = got
    assert isinstance(e, apixo.TaskFailedError) and e.fail_code == "CONTENT_VIOLATION"


def test_non_terminal_webhook_updates_without_completing(client):
    tid = client.submit(uniq("hooked"), max_images=1, resolution="3K")
    got = []
    client.watch(tid, lambda t, e: got.append((t, e)))
    task = client.handle_webhook(json.dumps(_status(tid, "processing")))
    assert task.state == "processing"
    time.sleep(0.02)
    assert got == []
    client.drain(timeout=30)
    assert len(got) == 1


def test_unknown_task_and_malformed_bodies(client):
    with pytest.raises(apixo.NotFoundError) as info:
        client.handle_webhook(json.dumps(_status("task_ffffffffffffffffffffffff")))
    assert info.value.task is not None
    assert info.value.task.id == "task_ffffffffffffffffffffffff"
    assert info.value.task.model is None
    for body in (b"", b"{", b"[]", b'{"code":200,"data":{"state":"success"}}', "not json"):
        with pytest.raises(apixo.ProtocolError):
            client.handle_webhook(body)


def test_unknown_fields_are_tolerated(client):
    tid = client.submit(uniq("hooked"), max_images=1, resolution="3K")
    client.watch(tid, lambda t, e: None)
    body = {"code": 200, "message": "success", "extra": [1], "data": _status(tid, novel={"x": 1})}
    task = client.handle_webhook(json.dumps(body))
    assert task.raw["novel"] == {"x": 1}
    client.drain(timeout=5)
