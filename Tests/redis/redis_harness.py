"""A redis-server of a test's own on a free loopback port (Debian's redis-server), and a few
raw RESP helpers (the tests need no Redis client library)."""

import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None
        self.start()

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)



def command(port, *args):
    """One command over a fresh connection; returns the raw reply bytes."""
    req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(req)
        s.settimeout(0.5)
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
    return data


def keys(port):
    """The keys of the server (KEYS *)."""
    return [l.decode() for l in command(port, "KEYS", "*").split(b"\r\n")[2::2] if l]


def commands_run(port):
    """Round trips the server has answered (INFO commandstats): the top-level commands a
    client sends, not the commands its scripts run inside Redis (commandstats counts those
    too), and not INFO itself."""
    top = ("evalsha", "eval", "script", "auth", "select", "ping", "hello", "command")
    total = 0
    for line in command(port, "INFO", "commandstats").decode().splitlines():
        name = line.split(":", 1)[0][len("cmdstat_"):]
        if line.startswith("cmdstat_") and name in top:
            total += int(line.split("calls=")[1].split(",")[0])
    return total
