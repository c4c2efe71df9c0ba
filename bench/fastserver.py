#!/usr/bin/env python3
"""A tiny fast stand-in for the APIXO API, for the scale benchmark (bench/scale.py).

    python3 bench/fastserver.py [--port 0]

Prints `fastserver listening on http://127.0.0.1:PORT` and answers, on HTTP/1.1 keep-alive:
  POST /api/v1/generateTask/<model>   200, a new task id
  GET  /api/v1/statusTask/<model>?taskId=ID
       ID starting with "run": 200 processing (such a task never ends);
       any other ID: 200 success, one result URL.
No limits, no validation, no auth check: it measures the client, not the API. asyncio,
standard library only. Stops on SIGTERM/SIGINT.
"""
import argparse
import asyncio
import json
import signal
import time


class Handler(asyncio.Protocol):
    counter = 0

    def connection_made(self, transport):
        self.t = transport
        self.buf = b""

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            length = 0
            for line in lines[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length:]
            method, target = lines[0].split(" ")[:2]
            self.t.write(self.answer(method, target))

    def answer(self, method, target):
        now = int(time.time() * 1000)
        if method == "POST":
            Handler.counter += 1
            data = {"taskId": "task_fast%d" % Handler.counter}
        else:
            tid = target.split("taskId=", 1)[-1]
            if tid.startswith("run"):
                data = {"taskId": tid, "state": "processing", "createTime": now - 1000}
            else:
                data = {"taskId": tid, "state": "success",
                        "resultJson": json.dumps({"resultUrls": ["http://127.0.0.1/files/%s-1.jpg" % tid]}),
                        "costTime": 900, "createTime": now - 1000, "completeTime": now - 1}
        body = json.dumps({"code": 200, "message": "success", "data": data}).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Handler, "127.0.0.1", port, backlog=1024)
    print("fastserver listening on http://127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    stop = loop.create_future()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
    await stop
    server.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    asyncio.run(main(ap.parse_args().port))
