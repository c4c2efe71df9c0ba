"""Blocking calls release the GIL: other Python threads keep running during a wait."""

from __future__ import annotations

import threading
import time
import uuid


def test_other_threads_run_during_wait(client):
    tid = client.submit(f"gil {uuid.uuid4().hex}", max_images=1, resolution="3K")
    ticks = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.001)

    t = threading.Thread(target=spin)
    t.start()
    try:
        time.sleep(0.02)
        start = time.monotonic()
        n0 = len(ticks)
        task = client.wait(tid, timeout=30)
        elapsed = time.monotonic() - start
        during = [x for x in ticks[n0:] if start <= x]
    finally:
        stop.set()
        t.join()
    assert task.succeeded
    assert elapsed > 0.1, "the task should take a while at 3K"
    # a thread sleeping 1 ms per iteration ticked throughout the wait; with the GIL
    # held it would not have ticked at all
    assert len(during) > 0.3 * elapsed / 0.002, (len(during), elapsed)
    gaps = [b - a for a, b in zip(during, during[1:])]
    assert max(gaps, default=0) < max(0.1, elapsed / 3)


def test_other_threads_run_during_generate(client):
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    t = threading.Thread(target=count)
    t.start()
    try:
        before = counter[0]
        client.generate(f"gil {uuid.uuid4().hex}", max_images=1, timeout=30)
        after = counter[0]
    finally:
        stop.set()
        t.join()
    assert after - before > 1000
