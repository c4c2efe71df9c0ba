"""asyncio: agenerate / awatch resolved through call_soon_threadsafe, no thread per task."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

import apixo
from conftest import make_client, os_thread_count


def uniq(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def test_fifty_concurrent_agenerate_on_one_loop(sim):
    prompts = [uniq(f"async {i}") for i in range(50)]
    samples = []

    async def main(client):
        stop = asyncio.Event()

        async def sample():
            while not stop.is_set():
                samples.append(os_thread_count())
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample())
        tasks = await asyncio.gather(*(client.agenerate(p, max_images=1, tag=p, timeout=60)
                                       for p in prompts))
        stop.set()
        await sampler
        return tasks

    with make_client(sim) as client:
        baseline = os_thread_count()
        before = threading.active_count()
        tasks = asyncio.run(main(client))
        assert threading.active_count() == before
    assert [t.tag for t in tasks] == prompts
    assert all(t.succeeded and len(t.urls) == 1 for t in tasks)
    assert len({t.id for t in tasks}) == 50
    # the engine and dispatcher threads existed before; nothing was added per task
    # (asyncio.run's loop may start one default-executor thread at shutdown at most)
    assert max(samples) <= baseline + 1, (baseline, max(samples))
    stats = sim.stats()
    assert all(stats["submits_by_prompt"][p] == 1 for p in prompts)
    assert stats["peak_concurrent_tasks"] <= 10
    assert stats["rate_limited"]["total"] == 0


def test_agenerate_failure_and_timeout(client):
    async def main():
        with pytest.raises(apixo.TaskFailedError) as info:
            await client.agenerate(uniq("[fail:NSFW_DETECTED] x"), max_images=1)
        assert info.value.fail_code == "NSFW_DETECTED"
        with pytest.raises(apixo.TimeoutError):
            await client.agenerate(uniq("slow"), max_images=1, resolution="3K", timeout=0.01)
        with pytest.raises(apixo.InvalidArgumentError):
            await client.agenerate(uniq("bad"), max_images=0)

    asyncio.run(main())
    client.drain(timeout=30)


def test_awatch(client):
    tid = client.submit(uniq("watch me"), max_images=1)

    async def main():
        return await client.awatch(tid, timeout=30)

    task = asyncio.run(main())
    assert task.id == tid and task.succeeded


def test_cancelled_coroutine_does_not_break_the_loop(client):
    async def main():
        job = asyncio.ensure_future(client.agenerate(uniq("abandoned"), max_images=1))
        await asyncio.sleep(0)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        return await client.agenerate(uniq("after"), max_images=1)

    assert asyncio.run(main()).succeeded
    client.drain(timeout=30)  # the abandoned task's callback still fires, harmlessly


def test_result_after_the_loop_closed_is_ignored(client):
    async def main():
        asyncio.ensure_future(client.agenerate(uniq("orphan"), max_images=1))
        await asyncio.sleep(0)

    asyncio.run(main())  # the loop closes with the future pending
    client.drain(timeout=30)
