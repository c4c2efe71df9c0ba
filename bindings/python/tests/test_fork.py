"""fork: a client belongs to the process that created it. In a forked child every call
raises ClosedError at once (the library's threads exist only in the parent); a client
created in the child works; the parent's client is unaffected."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import apixo
from conftest import PKG_ROOT, make_client


def _in_child(body) -> int:
    """Runs body() in a forked child; returns its exit status (0: body returned)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            body()
            code = 0
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"child: {type(exc).__name__}: {exc}\n".encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_parent_client_in_a_child_raises_at_once_and_a_new_one_works(sim):
    with make_client(sim) as parent:
        tid = parent.submit(f"before fork {uuid.uuid4().hex[:6]}", max_images=1)

        def child() -> None:
            started = time.monotonic()
            for call in (lambda: parent.generate("x", max_images=1, timeout=30),
                         lambda: parent.wait(tid, timeout=30),
                         lambda: parent.status(tid),
                         lambda: parent.stats(),
                         lambda: parent.submit("x", max_images=1, on_done=print)):
                try:
                    call()
                except apixo.ClosedError as exc:
                    assert "another process" in str(exc) and "after fork" in str(exc), exc
                else:
                    raise AssertionError("the parent's client worked in the child")
            assert time.monotonic() - started < 2.0
            assert parent.closed
            parent.close()  # returns at once: nothing of the parent's is touched
            with make_client(sim) as mine:
                assert mine.generate("after fork", max_images=1, timeout=30).succeeded

        assert _in_child(child) == 0
        # the parent's client is unaffected
        assert parent.wait(tid, timeout=30).succeeded
        assert not parent.closed


def test_a_child_that_exits_normally_with_the_parents_client_is_prompt(sim):
    # the child's interpreter exit runs the client's finalizer (and `with` closes it): it
    # must not wait for library threads that do not exist in the child
    script = (
        "import os, sys, apixo\n"
        f"c = apixo.Client(api_key={sim.key!r}, base_url={sim.api!r}, time_scale=0.01)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    with c:\n"
        "        pass\n"
        "    sys.exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "c.close()\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(PKG_ROOT))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
