"""Point 8 (faults): each kind, whether it counts against the rpm and whether a task is created."""

import http.client
import json
import time

import pytest

from simtest import KEY

GEN = "/api/v1/generateTask/seedream-5-0"


def post_raw(sim, prompt="faulty"):
    """A submit over a fresh connection; returns (status, body) or the exception raised."""
    c = sim.conn(timeout=5)
    try:
        c.request("POST", GEN, body=json.dumps({"input": {"prompt": prompt, "max_images": 1}}),
                  headers={"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, r.read()
    except (http.client.HTTPException, OSError) as e:
        return e
    finally:
        c.close()


def test_status_fault_is_not_processed_nor_counted(sim):
    sim.config(rpm=1, time_scale=1.0)
    sim.faults({"endpoint": "generateTask", "kind": "status", "status": 503, "count": 2,
                "retry_after": 2})
    for _ in range(2):
        r = sim.submit(input_={"prompt": "p503"})
        assert r.status == 503 and r.json["code"] == 503
        assert r.headers["retry-after"] == "2"
    r = sim.submit(input_={"prompt": "p503"})          # rpm 1: the two 503s used no slot
    assert r.status == 200
    s = sim.stats()
    assert s["tasks_created"] == 1
    assert s["submits_by_prompt"] == {"p503": 3} and s["tasks_by_prompt"] == {"p503": 1}
    assert s["faults"]["fired"] == {"status": 2} and s["faults"]["queued"] == []
    assert s["requests"]["generateTask"] == {"503": 2, "200": 1}


def test_status_500_on_status_endpoint_keeps_connection(sim):
    tid = sim.submit_ok()
    sim.faults({"endpoint": "statusTask", "kind": "status", "status": 500})
    c = sim.conn()
    for expect in (500, 200):
        c.request("GET", "/api/v1/statusTask/seedream-5-0?taskId=" + tid,
                  headers={"Authorization": "Bearer " + KEY})
        r = c.getresponse()
        body = json.loads(r.read())
        assert r.status == expect and body["code"] == expect
    c.close()


def test_reset_before_body(sim):
    sim.faults({"endpoint": "generateTask", "kind": "reset_before_body"})
    out = post_raw(sim, "lost")
    assert isinstance(out, (ConnectionError, http.client.HTTPException, OSError)), out
    s = sim.stats()
    assert s["tasks_created"] == 0 and s["submits_by_prompt"] == {}
    assert s["requests"]["generateTask"] == {"reset": 1}
    assert post_raw(sim, "lost")[0] == 200              # only one request was hit


def test_reset_after_body_creates_the_task(sim):
    """The indeterminate submit: processed, task created, but no answer."""
    sim.config(rpm=2, time_scale=1.0)
    sim.faults({"endpoint": "generateTask", "kind": "reset_after_body"})
    out = post_raw(sim, "maybe")
    assert isinstance(out, (ConnectionError, http.client.HTTPException, OSError)), out
    s = sim.stats()
    assert s["tasks_created"] == 1
    assert s["submits_by_prompt"] == {"maybe": 1} and s["tasks_by_prompt"] == {"maybe": 1}
    assert sim.status("task_x").status == 404          # slot 2
    assert sim.status("task_x").status == 429          # the reset request took slot 1


def test_delay(sim):
    sim.faults({"endpoint": "statusTask", "kind": "delay", "ms": 300})
    t0 = time.time()
    r = sim.status("task_x")
    assert time.time() - t0 >= 0.3
    assert r.status == 404                              # then answered normally
    f = sim.stats()["faults"]
    assert f == {"queued": [], "fired": {"delay": 1}}   # one request only


def test_malformed_json(sim):
    sim.faults({"endpoint": "generateTask", "kind": "malformed_json"})
    r = sim.submit(input_={"prompt": "mj"})
    assert r.status == 200
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.body)
    with pytest.raises(ValueError):
        json.loads(r.body)
    assert sim.stats()["tasks_by_prompt"] == {"mj": 1}


def test_truncated_body(sim):
    sim.faults({"endpoint": "generateTask", "kind": "truncated_body"})
    out = post_raw(sim, "cut")
    assert isinstance(out, http.client.IncompleteRead), out
    assert sim.stats()["tasks_by_prompt"] == {"cut": 1}


def test_error_envelope_in_http_200(sim):
    sim.faults({"endpoint": "generateTask", "kind": "error_envelope", "code": 500, "count": 1})
    r = sim.submit(input_={"prompt": "env"})
    assert r.status == 200
    e = r.json
    assert e["code"] == 500 and e["message"] == "Internal server error" and e["data"]["error"]
    s = sim.stats()
    assert s["tasks_created"] == 0 and s["submits_by_prompt"] == {"env": 1}
    assert s["requests"]["generateTask"] == {"200:500": 1}


def test_faults_match_endpoint_in_order(sim):
    tid = sim.submit_ok()
    sim.faults({"endpoint": "files", "kind": "status", "status": 503},
               {"endpoint": "statusTask", "kind": "status", "status": 500},
               {"endpoint": "any", "kind": "status", "status": 502, "count": 2})
    assert sim.submit().status == 502                  # only the "any" fault matches
    assert sim.status(tid).status == 500
    assert sim.status(tid).status == 502
    d = sim.wait(tid)
    url = json.loads(d["resultJson"])["resultUrls"][0]
    assert sim.request("GET", url[len(sim.url):], key=None).status == 503
    assert sim.request("GET", url[len(sim.url):], key=None).status == 200
    assert sim.sim("GET", "faults") == {"queued": []}


def test_files_truncated(sim):
    d = sim.wait(sim.submit_ok())
    url = json.loads(d["resultJson"])["resultUrls"][0]
    sim.faults({"endpoint": "files", "kind": "truncated_body"})
    c = sim.conn()
    c.request("GET", url[len(sim.url):])
    r = c.getresponse()
    with pytest.raises(http.client.IncompleteRead):
        r.read()
    c.close()


def test_fault_admin(sim):
    q = sim.faults({"kind": "delay", "ms": 1, "count": 3})["queued"]
    assert q == [{"kind": "delay", "endpoint": "any", "count": 3, "ms": 1}]
    q = sim.sim("POST", "faults", {"faults": [{"kind": "reset_after_body",
                                               "endpoint": "statusTask"}]})
    assert len(q["queued"]) == 2
    assert sim.sim("DELETE", "faults") == {"queued": []}
    sim.faults({"kind": "status"})
    sim.sim("POST", "reset")
    assert sim.sim("GET", "faults") == {"queued": []}


@pytest.mark.parametrize("bad,msg", [
    ({"kind": "explode"}, "kind must be one of"),
    ({"kind": "status", "endpoint": "web"}, "endpoint must be one of"),
    ({"kind": "status", "status": 200}, "status must be an integer from 400 to 599"),
    ({"kind": "status", "count": 0}, "count must be"),
    ({"kind": "status", "count": True}, "count must be"),
    ({"kind": "delay"}, "ms must be"),
    ({"kind": "delay", "ms": -5}, "ms must be"),
    ({"kind": "error_envelope", "code": "500"}, "code must be"),
    ([], "body must be"),
    (b'"x"', "body must be"),
    (b"{", "Malformed JSON"),
])
def test_bad_fault_specs_400(sim, bad, msg):
    r = sim.request("POST", "/_sim/faults", bad, key=None)
    assert r.status == 400 and msg in r.json["data"]["error"], r
    assert sim.sim("GET", "faults") == {"queued": []}


def test_sim_hooks_are_not_subject_to_faults(sim):
    sim.faults({"kind": "status", "status": 503})
    assert sim.request("GET", "/_sim/stats", key=None).status == 200
    assert sim.submit().status == 503
