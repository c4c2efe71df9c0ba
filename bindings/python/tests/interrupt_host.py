"""A program blocked in one apixo call, for test_interrupt.py: prints "calling", makes the
call, and on KeyboardInterrupt prints one JSON line with what the exception carried."""

from __future__ import annotations

import json
import sys
import time

import apixo

call, base_url, key = sys.argv[1], sys.argv[2], sys.argv[3]
with apixo.Client(api_key=key, base_url=base_url, time_scale=0.01) as client:
    tid = None
    if call in ("wait", "status", "drain"):
        tid = client.submit("interrupt me", max_images=1)
    if call == "drain":
        client.watch(tid, lambda task, error: None)
    print("calling", flush=True)
    try:
        if call == "generate":
            client.generate("interrupt me", max_images=1, timeout=None)
        elif call == "submit":
            client.submit("interrupt me", max_images=1)
        elif call == "wait":
            client.wait(tid, timeout=None)
        elif call == "status":
            client.status(tid)
        elif call == "drain":
            client.drain()
        print(json.dumps({"interrupted": False}), flush=True)
    except KeyboardInterrupt as exc:
        caught = time.monotonic()
        print("interrupted", flush=True)
        task_id = getattr(exc, "apixo_task_id", None)
        if call == "generate" or call == "wait":
            # the wait stopped tracking: its registration is gone at once
            while client.stats().pending_callbacks and time.monotonic() < caught + 5:
                time.sleep(0.01)
        print(json.dumps({
            "interrupted": True, "task_id": task_id, "notes": getattr(exc, "__notes__", []),
            "pending_callbacks": client.stats().pending_callbacks,
        }), flush=True)
