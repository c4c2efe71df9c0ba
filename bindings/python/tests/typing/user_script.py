"""A user program that touches every public call of apixo; tests/test_typing.py checks it
with mypy --strict and basedpyright (strict). It is type-checked, not run."""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import List, Optional

import apixo
from apixo import Client, Error, Stats, Task, TaskFailedError


def on_done(task: Optional[Task], error: Optional[Error]) -> None:
    if error is not None:
        print(error.code, error.code_name, error.message, error.task_id, error.submitted)
    elif task is not None:
        print(task.id, task.state, task.urls)


def on_update(task: Task) -> None:
    print(task.state)


def blocking(client: Client) -> None:
    task = client.generate("a cozy cafe", max_images=2, resolution="2K", aspect_ratio="16:9",
                           output_format="png", provider="auto", sequential=False,
                           web_search=True, prompt_optimize_mode="standard", tag="mine",
                           timeout=120, on_update=on_update)
    paths: List[str] = task.save("out/")
    print(paths, task.done, task.succeeded, task.failed, task.created_at, task.completed_at,
          task.cost_time, task.to_dict(), task.raw, task.fail_code, task.fail_message,
          task.create_time_ms, task.complete_time_ms, task.cost_time_ms, task.tag, task.model)
    tid = client.submit("a fox", max_images=1, resolution=(2048, 2048))
    print(tid.upper())
    nothing: None = client.submit("a fox", max_images=1, on_done=on_done)
    print(nothing)
    snapshot: Task = client.status(tid, model="seedream-5-0")
    done: Task = client.wait(tid, timeout=None, on_update=on_update)
    print(snapshot == done, hash(done), pickle.loads(pickle.dumps(done)))
    client.watch(tid, on_done, model="seedream-5-0")
    client.cancel(tid)
    client.drain(timeout=30)
    client.resume(on_done)
    hooked: Task = client.handle_webhook(b"{}")
    print(hooked, client.download(done.urls[0], "out/one.jpg"))
    body = client.request_json("img2img", mode="image-to-image", max_images=1,
                               image_urls=["https://example.com/a.png"], extra={"seed": 7},
                               callback_url="https://example.com/hook", validate=False)
    print(body["input"])
    stats: Stats = client.stats()
    print(stats.queued, stats.in_flight, stats.tracked, stats.requests_in_window,
          stats.pending_callbacks, client.closed, apixo.library_version(), apixo.__version__)
    try:
        client.generate("[fail:NSFW] x", max_images=1)
    except TaskFailedError as e:
        print(e.fail_code, e.fail_message, e.task)
    except apixo.TimeoutError as e:
        print(e.task_id, e.task)


async def concurrent(client: Client) -> None:
    tid: str = await client.asubmit("a fox", max_images=1)
    first: Task = await client.astatus(tid)
    task: Task = await client.awatch(tid, timeout=60, on_update=on_update)
    tasks = await asyncio.gather(*(client.agenerate(f"cat {i}", max_images=1, timeout=60)
                                   for i in range(3)))
    saved: List[str] = await task.asave("out/")
    path: str = await client.adownload(task.urls[0], "out/a.jpg")
    print(first, tasks[0].id, saved, path)
    await client.aclose()


async def main() -> None:
    async with Client(api_key="sk", base_url="http://127.0.0.1:8080/api/v1", timeout=30.0,
                      max_retries=3, requests_per_minute=60, max_concurrent_tasks=10,
                      time_scale=1.0, ca_file=None, journal=None, max_download_bytes=1 << 20,
                      logger=logging.getLogger("mine")) as client:
        await concurrent(client)
    async with apixo.AsyncClient(api_key="sk", time_scale=1.0) as queued:
        await concurrent(queued)
    with Client(logger=False) as client:
        blocking(client)


asyncio.run(main())
