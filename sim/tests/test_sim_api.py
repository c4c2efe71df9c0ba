"""Point 2 and robustness: endpoints, envelope, auth, 404/405/400 for bad input, HTTP details."""

import http.client
import json
import socket
import time

import pytest

from simtest import KEY, OTHER_KEY

GEN = "/api/v1/generateTask/seedream-5-0"


def read_response(s):
    """One framed HTTP response from a raw socket: (head bytes, body bytes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            n = int(v)
    while len(body) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def assert_env(r, code, contains=""):
    assert r.status == code, r
    assert r.headers["content-type"] == "application/json"
    assert int(r.headers["content-length"]) == len(r.body)
    e = r.json
    assert e["code"] == code and isinstance(e["message"], str) and isinstance(e["data"], dict)
    if code != 200:
        assert contains in e["data"]["error"], e
    return e


def test_quickstart_flow(sim):
    """The spec's copy-paste quickstart: POST generateTask, then GET statusTask."""
    r = sim.request("POST", GEN, {
        "request_type": "async",
        "input": {"mode": "text-to-image", "prompt": "a cozy cyberpunk cafe with neon lights",
                  "max_images": 1, "resolution": "2K", "aspect_ratio": "16:9",
                  "output_format": "jpeg", "prompt_optimize_mode": "standard"}})
    e = assert_env(r, 200)
    assert e["message"] == "success" and set(e["data"]) == {"taskId"}
    tid = e["data"]["taskId"]
    assert tid.startswith("task_")
    d = sim.wait(tid)
    assert d["state"] == "success" and d["taskId"] == tid
    urls = json.loads(d["resultJson"])["resultUrls"]
    assert urls == ["%s/files/%s-1.jpg" % (sim.url, tid)]


@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic c2stc2ltOg==", "Bearer", "sk-sim",
                                  "Bearer sk-sim extra"])
def test_auth_rejected(sim, auth):
    h = {"Authorization": auth} if auth else {}
    for method, path, body in (("POST", GEN, {"input": {"prompt": "p", "max_images": 1}}),
                               ("GET", "/api/v1/statusTask/seedream-5-0?taskId=task_1", None)):
        r = sim.request(method, path, body, key=None, headers=h)
        assert_env(r, 401, "API key")
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert sim.stats()["tasks_created"] == 0


def test_auth_accepts_each_key_and_case_insensitive_scheme(sim):
    for key in (KEY, OTHER_KEY):
        assert sim.status("task_x", key=key).status == 404
    r = sim.request("GET", "/api/v1/statusTask/seedream-5-0?taskId=task_x", key=None,
                    headers={"Authorization": "bearer " + KEY})
    assert r.status == 404


def test_unknown_model_task_and_cross_model(sim):
    assert_env(sim.submit(model="no-such-model"), 404, "Unknown model")
    assert_env(sim.status("task_1", model="no-such-model"), 404, "Unknown model")
    assert_env(sim.status("task_doesnotexist"), 404, "Task not found")
    tid = sim.submit_ok()
    assert_env(sim.status(tid, model="seedream-4-5"), 404, "Task not found")
    assert_env(sim.status(tid), 200)
    tid2 = sim.submit_ok({"resolution": "4K"}, model="seedream-4-5")
    assert_env(sim.status(tid2, model="seedream-5-0"), 404)
    assert_env(sim.status(tid2, model="seedream-4-5"), 200)


@pytest.mark.parametrize("query,msg", [
    ("", "Missing required query parameter: taskId"),
    ("?taskId=", "Missing required query parameter: taskId"),
    ("?task=abc", "Missing required query parameter: taskId"),
    ("?taskId=a&taskId=b", "exactly once"),
    ("?taskId", "Malformed query"),
    ("?&&=&", "Malformed query"),
])
def test_bad_status_query(sim, query, msg):
    assert_env(sim.request("GET", "/api/v1/statusTask/seedream-5-0" + query), 400, msg)


def test_status_query_may_carry_extra_params(sim):
    tid = sim.submit_ok()
    r = sim.request("GET", "/api/v1/statusTask/seedream-5-0?foo=1&taskId=%s" % tid)
    assert_env(r, 200)


@pytest.mark.parametrize("method,path,allow", [
    ("GET", GEN, "POST"), ("PUT", GEN, "POST"), ("DELETE", GEN, "POST"),
    ("POST", "/api/v1/statusTask/seedream-5-0?taskId=x", "GET"),
    ("HEAD", "/api/v1/statusTask/seedream-5-0?taskId=x", "GET"),
    ("POST", "/files/task_1-1.jpg", "GET, HEAD"),
    ("GET", "/_sim/reset", "POST"),
])
def test_wrong_method_405(sim, method, path, allow):
    r = sim.request(method, path, body=b"{}" if method in ("POST", "PUT") else None)
    assert r.status == 405
    assert r.headers["allow"] == allow
    if method != "HEAD":
        assert_env(r, 405, "not allowed")


@pytest.mark.parametrize("path", ["/", "/api/v1", "/api/v1/generateTask", "/api/v2/statusTask/x",
                                  "/_sim/nope", "/favicon.ico", "/api/v1/statustask/seedream-5-0"])
def test_unknown_path_404(sim, path):
    assert_env(sim.request("GET", path), 404, "Unknown path")


def test_unknown_method_is_405_envelope(sim):
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"BREW /api/v1/generateTask/seedream-5-0 HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = read_response(s)
    assert head.startswith(b"HTTP/1.1 405")
    assert json.loads(body)["code"] == 405


@pytest.mark.parametrize("raw", [
    b"garbage\r\n\r\n",
    b"GET /x HTTP/9.9\r\n\r\n",
    b"GET /api/v1/statusTask/seedream-5-0 HTTP/1.1\r\nBad Header Line\r\n\r\n",
    b"\x00\xff\xfe\r\n\r\n",
])
def test_malformed_http_gets_envelope_and_sim_survives(sim, raw):
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(raw)
        head, body = read_response(s)
    assert head.startswith(b"HTTP/1.1 4") or head.startswith(b"HTTP/1.1 5"), head
    e = json.loads(body)
    assert 400 <= e["code"] < 600
    assert sim.stats()["config"]["rpm"] == 0            # still alive


def test_long_request_line_414(sim):
    r = sim.request("GET", "/api/v1/statusTask/seedream-5-0?taskId=" + "a" * 70000)
    assert_env(r, 414)


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "application/jsonx"])
def test_non_json_content_type_400(sim, ctype):
    r = sim.request("POST", GEN, {"input": {"prompt": "p", "max_images": 1}},
                    content_type=ctype)
    assert_env(r, 400, "Content-Type must be application/json")


def test_json_content_type_with_charset_ok(sim):
    r = sim.request("POST", GEN, {"input": {"prompt": "p", "max_images": 1}},
                    content_type="Application/JSON; charset=utf-8")
    assert_env(r, 200)


@pytest.mark.parametrize("body,msg", [
    (b"{", "Malformed JSON"), (b"", "Malformed JSON"), (b"{'a':1}", "Malformed JSON"),
    (b'{"input": NaN}', "Malformed JSON"), (b"\xff\xfe{}", "Malformed JSON"),
    (b"[" * 100000 + b"]" * 100000, "Malformed JSON"),
    (b"[]", "must be a JSON object"), (b'"x"', "must be a JSON object"),
    (b"null", "must be a JSON object"),
])
def test_malformed_bodies_400(sim, body, msg):
    assert_env(sim.request("POST", GEN, body), 400, msg)


def test_body_over_1mib_400(sim):
    big = {"input": {"prompt": "p", "max_images": 1, "pad": "x" * (1 << 20)}}
    assert_env(sim.request("POST", GEN, big), 400, "at most 1048576 bytes")
    ok = {"input": {"prompt": "p", "max_images": 1, "pad": "x" * ((1 << 20) - 100)}}
    assert_env(sim.request("POST", GEN, ok), 200)


def test_body_over_1mib_with_expect_100_continue(sim):
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"POST " + GEN.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + KEY.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2000000\r\nExpect: 100-continue\r\n\r\n")
        data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 400"), data
    assert b"at most 1048576 bytes" in data


def test_invalid_content_length_400(sim):
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"POST " + GEN.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
        data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 400") and b"Content-Length" in data


def test_chunked_request_body(sim):
    body = json.dumps({"input": {"prompt": "chunky", "max_images": 1}}).encode()
    c = sim.conn()
    c.putrequest("POST", GEN)
    c.putheader("Authorization", "Bearer " + KEY)
    c.putheader("Content-Type", "application/json")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    for i in range(0, len(body), 7):
        part = body[i:i + 7]
        c.send(b"%x\r\n%s\r\n" % (len(part), part))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["data"]["taskId"]
    # the connection is still usable
    c.request("GET", "/_sim/stats")
    assert c.getresponse().status == 200
    c.close()


def test_keep_alive_many_requests_one_connection(sim):
    tid = sim.submit_ok()
    before = sim.stats()["connections_accepted"]
    c = sim.conn()
    for _ in range(50):
        c.request("GET", "/api/v1/statusTask/seedream-5-0?taskId=" + tid,
                  headers={"Authorization": "Bearer " + KEY})
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Content-Length")
        r.read()
    # errors keep the connection alive as well
    c.request("GET", "/nope")
    r = c.getresponse()
    assert r.status == 404
    r.read()
    c.request("POST", GEN, body=b"{", headers={"Authorization": "Bearer " + KEY,
                                               "Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 400 and r.getheader("Connection") is None
    r.read()
    c.close()
    s = sim.stats()
    assert s["polls"][tid] == 50
    # this keep-alive connection and the one of the stats request
    assert s["connections_accepted"] - before == 2


def test_connection_close_is_honoured(sim):
    r = sim.request("GET", "/nope", headers={"Connection": "close"})
    assert r.status == 404 and r.headers.get("connection") == "close"


def test_many_concurrent_connections(sim):
    conns = [sim.conn() for _ in range(60)]
    for c in conns:
        c.request("GET", "/api/v1/statusTask/seedream-5-0?taskId=task_x",
                  headers={"Authorization": "Bearer " + KEY})
    for c in conns:
        r = c.getresponse()
        assert r.status == 404
        r.read()
        c.close()


def test_http10_client(sim):
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"GET /api/v1/statusTask/seedream-5-0?taskId=t HTTP/1.0\r\n"
                  b"Authorization: Bearer sk-sim\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    assert b" 404 " in data.split(b"\r\n", 1)[0]


def test_sim_endpoints_need_no_auth(sim):
    assert sim.request("GET", "/_sim/stats", key=None).status == 200
    assert sim.request("GET", "/_sim/stats", key="wrong").status == 200


def test_loopback_rule_for_sim_hooks():
    import apixo_sim
    assert apixo_sim.is_loopback_address("127.0.0.1")
    assert apixo_sim.is_loopback_address("127.9.9.9")
    assert apixo_sim.is_loopback_address("::1")
    assert apixo_sim.is_loopback_address("::ffff:127.0.0.1")
    assert not apixo_sim.is_loopback_address("10.0.0.1")
    assert not apixo_sim.is_loopback_address("192.168.1.5")
    assert not apixo_sim.is_loopback_address("::ffff:10.0.0.1")
    assert not apixo_sim.is_loopback_address("garbage")


def test_absolute_form_request_target(sim):
    tid = sim.submit_ok()
    r = sim.request("GET", "http://example.invalid/api/v1/statusTask/seedream-5-0?taskId=" + tid)
    assert r.status == 200


def test_client_disconnect_mid_body_does_not_hurt(sim):
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"POST " + GEN.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n"
                  b"Content-Type: application/json\r\n\r\n{\"inp")
    time.sleep(0.05)
    assert sim.submit().status == 200


def test_time_fields_are_unix_ms(sim):
    before = int(time.time() * 1000)
    tid = sim.submit_ok()
    d = sim.wait(tid)
    after = int(time.time() * 1000)
    assert before - 5 <= d["createTime"] <= d["completeTime"] <= after + 5
    assert isinstance(d["costTime"], int)


def test_errors_never_leak_html(sim):
    # every answer of the sim is JSON unless it is a file
    with socket.create_connection((sim.host, sim.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"a" * 70000 + b"\r\n\r\n")
        head, body = read_response(s)
    assert head.startswith(b"HTTP/1.1 4")
    assert json.loads(body)["code"] >= 400


def test_http_client_library_roundtrip(sim):
    """Sanity: http.client sees Content-Length framing on every answer."""
    c = http.client.HTTPConnection(sim.host, sim.port, timeout=5)
    c.request("GET", "/_sim/stats")
    r = c.getresponse()
    assert r.getheader("Content-Length") == str(len(r.read()))
    c.close()
