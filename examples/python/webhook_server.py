#!/usr/bin/env python3
"""Receive APIXO webhooks with the standard library and hand them to the client.

    python3 examples/python/webhook_server.py --port 8080 --public-url https://me.example/hook

APIXO POSTs the final status of a task submitted with callback_url to this server; the
handler passes the raw body to Client.handle_webhook, which completes the task once
(its on_done fires) and recognises repeated deliveries. Answer 200 quickly: APIXO retries
otherwise. The body carries no signature, so handle_webhook only trusts what it can match
to a task this client submitted.

--demo N submits N tasks whose callback_url points at this server, waits until every
on_done fired, and exits (used by the tests against the simulator).
"""

import argparse
import logging
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import apixo

log = logging.getLogger("webhook_server")
MAX_BODY = 1 << 20


def make_handler(client: apixo.Client, path: str, seen=None):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            if self.path.split("?", 1)[0] != path:
                return self.answer(404)
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self.answer(413)
            body = self.rfile.read(length)
            try:
                task = client.handle_webhook(body)
                log.info("webhook: %s %s", task.id, task.state)
                if seen is not None:
                    seen(task)
                self.answer(200)
            except apixo.NotFoundError as exc:
                # not ours (or long forgotten): acknowledge, or APIXO keeps retrying
                log.warning("webhook for an unknown task: %s", exc)
                self.answer(200)
            except apixo.ProtocolError as exc:
                log.warning("malformed webhook: %s", exc)
                self.answer(400)

        def answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *args):
            log.debug("%s " + fmt, self.address_string(), *args)

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--path", default="/apixo/webhook")
    ap.add_argument("--public-url", help="the URL APIXO should call (default: this server)")
    ap.add_argument("--demo", type=int, default=0, help="submit N tasks, wait, exit")
    ap.add_argument("--time-scale", type=float,
                    default=float(os.environ.get("APIXO_TIME_SCALE", "1.0")))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    received = set()
    received_cv = threading.Condition()

    def seen(task):
        with received_cv:
            received.add(task.id)
            received_cv.notify_all()

    with apixo.Client(time_scale=args.time_scale) as client:
        server = ThreadingHTTPServer((args.host, args.port),
                                     make_handler(client, args.path, seen))
        server.daemon_threads = True
        url = args.public_url or "http://%s:%d%s" % (args.host, server.server_address[1],
                                                     args.path)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        print(f"listening on {url}", flush=True)
        try:
            if not args.demo:
                threading.Event().wait()  # serve until interrupted
                return 0
            results = []
            lock = threading.Lock()

            def on_done(task, error):
                with lock:
                    results.append((task, error))
                print(f"done {task.tag if task else '?'}: "
                      f"{'ok ' + task.id if error is None else error.code_name}", flush=True)

            for i in range(args.demo):
                client.submit(f"webhook demo {i + 1}", max_images=1, tag=f"demo-{i + 1}",
                              callback_url=url, on_done=on_done)
            client.drain(timeout=300)
            # the client also polls, so a task may complete before its webhook arrives;
            # keep serving until every delivery came in (the demo's own check)
            ids = {t.id for t, _ in results if t is not None}
            with received_cv:
                received_cv.wait_for(lambda: ids <= received, timeout=60 * args.time_scale + 5)
                print(f"webhooks received for {len(ids & received)}/{len(ids)} tasks", flush=True)
            ok = sum(1 for _, e in results if e is None)
            print(f"{ok}/{args.demo} succeeded", flush=True)
            return 0 if ok == args.demo and len(results) == args.demo else 1
        except KeyboardInterrupt:
            return 0
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    sys.exit(main())
