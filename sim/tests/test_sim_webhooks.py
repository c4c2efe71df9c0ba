"""Point 7: webhook delivery on completion, retries with growing delays, never blocking the API."""

import http.server
import json
import socket
import threading
import time

import pytest

from simtest import wait_until


class Receiver:
    """A webhook receiver on loopback. `plan` lists what to do per attempt: an HTTP status to
    answer, or ("sleep", seconds) to hang before answering 200. Past the plan: 200."""

    def __init__(self, plan=()):
        self.plan = list(plan)
        self.calls = []           # (time, headers, body dict)
        self.lock = threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n))
                with rec.lock:
                    rec.calls.append((time.time(), dict(self.headers), body))
                    step = rec.plan.pop(0) if rec.plan else 200
                if isinstance(step, tuple):
                    time.sleep(step[1])
                    step = 200
                try:
                    self.send_response(step)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook?src=sim" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(plan=()):
        r = Receiver(plan)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def submit_cb(sim, url, **inp):
    return sim.submit_ok(inp, request_type="callback", callback_url=url)


def test_delivery_on_success_without_polling(sim, receiver):
    rx = receiver()
    tid = submit_cb(sim, rx.url, max_images=2)
    wait_until(lambda: rx.calls, timeout=10, what="webhook")
    t, headers, body = rx.calls[0]
    assert headers["Content-Type"] == "application/json"
    assert body["code"] == 200 and body["message"] == "success"
    d = body["data"]
    assert d["taskId"] == tid and d["state"] == "success"
    assert len(json.loads(d["resultJson"])["resultUrls"]) == 2
    assert {"costTime", "createTime", "completeTime"} <= set(d)
    assert t * 1000 >= d["completeTime"] - 5
    # the same object as the status endpoint returns
    assert sim.status(tid).json["data"] == d
    time.sleep(0.1)
    assert len(rx.calls) == 1
    s = sim.stats()
    assert s["polls"] == {tid: 1}
    wh = s["webhooks"]
    assert (wh["scheduled"], wh["attempts"], wh["delivered"], wh["failed_attempts"],
            wh["gave_up"]) == (1, 1, 1, 0, 0)
    assert wh["outcomes"] == {"200": 1}
    assert wh["by_task"][tid] == {"attempts": 1, "delivered": True, "gave_up": False,
                                  "outcomes": ["200"]}


def test_delivery_on_failure(sim, receiver):
    rx = receiver()
    tid = submit_cb(sim, rx.url, prompt="[fail:CONTENT_VIOLATION]")
    wait_until(lambda: rx.calls, timeout=10, what="webhook")
    d = rx.calls[0][2]["data"]
    assert d["taskId"] == tid and d["state"] == "failed"
    assert d["failCode"] == "CONTENT_VIOLATION" and d["failMsg"]
    assert "resultJson" not in d and "completeTime" in d


def test_retries_with_growing_delays_until_200(sim, receiver):
    rx = receiver([500, 503])
    tid = submit_cb(sim, rx.url)
    wait_until(lambda: len(rx.calls) >= 3, timeout=15, what="3 attempts")
    times = [c[0] for c in rx.calls]
    assert times[1] - times[0] >= 0.3 * 0.95          # 30 s scaled
    assert times[2] - times[1] >= 0.6 * 0.95          # 60 s scaled
    assert [c[1]["X-Sim-Webhook-Attempt"] for c in rx.calls] == ["1", "2", "3"]
    assert all(c[2] == rx.calls[0][2] for c in rx.calls)   # the same payload each time
    wait_until(lambda: sim.stats()["webhooks"]["delivered"] == 1, what="delivered")
    wh = sim.stats()["webhooks"]
    assert wh["by_task"][tid]["outcomes"] == ["500", "503", "200"]
    assert wh["attempts"] == 3 and wh["failed_attempts"] == 2 and wh["gave_up"] == 0


def test_gives_up_after_three_retries(sim):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                          # nothing listens there: refused
    tid = submit_cb(sim, "http://127.0.0.1:%d/hook" % port)
    wait_until(lambda: sim.stats()["webhooks"]["gave_up"] == 1, timeout=20, what="give up")
    wh = sim.stats()["webhooks"]
    assert wh["by_task"][tid] == {"attempts": 4, "delivered": False, "gave_up": True,
                                  "outcomes": ["error"] * 4}
    assert wh["attempts"] == 4 and wh["failed_attempts"] == 4
    time.sleep(0.3)
    assert sim.stats()["webhooks"]["attempts"] == 4


def test_slow_receiver_times_out_and_api_stays_responsive(sim, receiver):
    rx = receiver([("sleep", 3.0)])                   # timeout is 30 s scaled = 0.3 s
    tid = submit_cb(sim, rx.url)
    wait_until(lambda: rx.calls, timeout=10, what="first attempt")
    t0 = time.time()
    assert sim.status(tid).status == 200              # while the receiver hangs
    assert time.time() - t0 < 1.0
    wait_until(lambda: sim.stats()["webhooks"]["delivered"] == 1, timeout=15, what="delivery")
    assert sim.stats()["webhooks"]["by_task"][tid]["outcomes"] == ["timeout", "200"]
    assert len(rx.calls) == 2


def test_reset_cancels_pending_deliveries(sim, receiver):
    rx = receiver()
    sim.config(time_scale=0.03)                       # completes after >= 0.75 s
    submit_cb(sim, rx.url)
    sim.sim("POST", "reset")
    time.sleep(1.2)
    assert rx.calls == []
    assert sim.stats()["webhooks"]["attempts"] == 0


def test_async_tasks_get_no_webhook(sim, receiver):
    rx = receiver()
    tid = sim.submit_ok(request_type="async", callback_url=rx.url)
    sim.wait(tid)
    time.sleep(0.1)
    assert rx.calls == [] and sim.stats()["webhooks"]["scheduled"] == 0
