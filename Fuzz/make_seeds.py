#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (Fuzz/corpus/<target>/) from real traffic.

    python3 Fuzz/make_seeds.py [--lib build/lib/libapixo.so]

Starts apixo-sim (time scale 0.01), then records:
  answers/  status answers for pending, processing, success and failed tasks, submit
            answers, and the error answers of the simulator's faults (429 with Retry-After,
            503, error envelopes, malformed and truncated JSON), each as the target reads it:
            "STATUS FLAGS\\n", the header lines, an empty line, the body;
  webhook/  the bodies the simulator POSTs to a callback_url (success and failure), and the
            documented forms (bare status object, the spec's examples);
  journal/  journal files written by the library (the Python package over libapixo.so):
            submits in flight, finished and delivered, a watch; each both as is ("!" + file)
            and as record lines without checksums (the target adds them).
Known numeric traps (huge createTime / Retry-After / seq values) are not seeded on purpose.
"""

import argparse
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def save(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def start_sim():
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "sim", "apixo_sim.py"), "--port", "0",
                             "--time-scale", "0.01", "--small-images", "--seed", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    return proc, line.rsplit(" ", 1)[-1]


def raw(method, url, body=None, headers=None):
    """(status, [header lines], body bytes) of one request."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, ["%s: %s" % kv for kv in r.getheaders()], r.read()
    except urllib.error.HTTPError as e:
        return e.code, ["%s: %s" % kv for kv in e.headers.items()], e.read()


def answer_seed(status, headers, body, flags=0):
    return ("%d %d\n" % (status, flags)).encode() + "".join(h + "\r\n" for h in headers).encode() + b"\r\n" + body


class Hook(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        Hook.bodies.append(self.rfile.read(n))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=os.path.join(ROOT, "build", "lib", "libapixo.so"))
    args = ap.parse_args()
    proc, root = start_sim()
    api = root + "/api/v1"
    auth = {"Authorization": "Bearer sk-sim", "Content-Type": "application/json"}
    try:
        def submit(prompt, extra=None):
            body = {"input": {"prompt": prompt, "max_images": 2, "resolution": "2K"}}
            body.update(extra or {})
            st, hs, b = raw("POST", api + "/generateTask/seedream-5-0", json.dumps(body).encode(), auth)
            save("answers", answer_seed(st, hs, b, 1))
            return json.loads(b)["data"].get("taskId")

        def status(tid, flags=0):
            st, hs, b = raw("GET", api + "/statusTask/seedream-5-0?taskId=" + tid, None, auth)
            save("answers", answer_seed(st, hs, b, flags))
            return json.loads(b).get("data", {}).get("state")

        # status answers through a task's life, a success and a failure
        ok = submit("a lighthouse at dawn")
        bad = submit("a test [fail:CONTENT_VIOLATION]")
        seen = set()
        for _ in range(400):
            for tid in (ok, bad):
                seen.add(status(tid))
            if {"success", "failed"} <= seen:
                break
            time.sleep(0.02)
        status("no-such-task")
        # error answers from the simulator's faults
        faults = [{"kind": "status", "status": 429, "retry_after": 2}, {"kind": "status", "status": 503},
                  {"kind": "status", "status": 500, "retry_after": 0}, {"kind": "error_envelope", "code": 429},
                  {"kind": "error_envelope", "code": 500}, {"kind": "malformed_json"}, {"kind": "truncated_body"}]
        for f in faults:
            for ep in ("generateTask", "statusTask"):
                raw("POST", root + "/_sim/faults", json.dumps(dict(f, endpoint=ep)).encode(), auth)
                try:
                    if ep == "generateTask":
                        st, hs, b = raw("POST", api + "/generateTask/seedream-5-0",
                                        b'{"input":{"prompt":"x","max_images":1}}', auth)
                        save("answers", answer_seed(st, hs, b, 1))
                    else:
                        status(ok)
                except Exception:  # a truncated body may fail in urllib
                    pass
        raw("DELETE", root + "/_sim/faults", None, auth)
        st, hs, b = raw("POST", api + "/generateTask/seedream-5-0", b'{"input":{}}', auth)
        save("answers", answer_seed(st, hs, b, 1))
        st, hs, b = raw("GET", api + "/statusTask/seedream-5-0?taskId=" + ok, None, {})
        save("answers", answer_seed(st, hs, b, 0))
        save("answers", b"200 2\n\r\n")  # curl timed out
        save("answers", b"200 4\n\r\n{}")  # body over the limit
        save("answers", b"200 8\n\r\n")  # aborted at close
        save("answers", b"429 0\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n")
        save("answers", b'200 0\nHTTP/1.1 100 Continue\r\nContent-Type: text/plain\r\n\r\n'
                        b'{"code":200,"message":"success","data":{"taskId":"t","state":"success",'
                        b'"resultJson":{"resultUrls":["https://x/y.png"]},"createTime":"1700000000000"}}')

        # webhooks: real deliveries, and the documented forms
        srv = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        cb = "http://127.0.0.1:%d/hook" % srv.server_address[1]
        submit("a webhook task", {"request_type": "callback", "callback_url": cb})
        submit("a failing webhook [fail:NSFW_DETECTED]", {"request_type": "callback", "callback_url": cb})
        for _ in range(500):
            if len(Hook.bodies) >= 2:
                break
            time.sleep(0.02)
        srv.shutdown()
        for b in Hook.bodies:
            save("webhook", b)
            env = json.loads(b)
            save("webhook", json.dumps(env["data"]).encode())  # a bare status object
        save("webhook", b'{"code":200,"message":"success","data":{"taskId":"task_12345678","state":"success",'
                        b'"resultJson":"{\\"resultUrls\\":[\\"https://cdn.apixo.ai/a.jpg\\"]}",'
                        b'"costTime":30000,"createTime":1700000000000,"completeTime":1700000030000}}')
        save("webhook", b'{"code":200,"message":"success","data":{"taskId":"task_1","state":"failed",'
                        b'"failCode":"CONTENT_VIOLATION","failMsg":"no","createTime":1700000000000,'
                        b'"completeTime":1700000001000}}')
        save("webhook", b'{"taskId":"task_2","state":"processing","createTime":1700000000000}')

        # journal files written by the library
        sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
        os.environ["APIXO_LIBRARY"] = args.lib
        import apixo
        tmp = tempfile.mkdtemp()
        try:
            def keep(path):
                with open(path, "rb") as f:
                    data = f.read()
                save("journal", b"!" + data)
                save("journal", b"\n".join(line.split(b" ", 1)[1] for line in data.splitlines() if b" " in line))

            j = os.path.join(tmp, "j1")
            c = apixo.Client(base_url=api, api_key="sk-sim", time_scale=0.01, journal=j, logger=False)
            t = c.generate("journal done", max_images=1)
            c.submit("journal in flight", max_images=1, tag="job-7")
            c.watch(t.id, on_done=lambda *a: None)
            keep(j)
            c.close()
            keep(j)
            # a submit whose answer was lost (sent, never answered)
            raw("POST", root + "/_sim/faults", b'{"kind":"reset_after_body","endpoint":"generateTask"}', auth)
            j2 = os.path.join(tmp, "j2")
            c = apixo.Client(base_url=api, api_key="sk-sim", time_scale=0.01, journal=j2, logger=False)
            try:
                c.submit("journal lost", max_images=1, tag="lost")
            except apixo.Error:
                pass
            keep(j2)
            c.close()
        finally:
            shutil.rmtree(tmp)
    finally:
        proc.terminate()
        proc.wait()
    for t in ("answers", "webhook", "journal"):
        print("%s: %d seeds" % (t, len(os.listdir(os.path.join(CORPUS, t)))))


if __name__ == "__main__":
    main()
