"""asyncio: agenerate / awatch resolved through call_soon_threadsafe, no thread per task."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

import apixo
from conftest import make_client, os_thread_count, wait_until


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
        # the submits ran on the client's fixed pool of helper threads
        assert threading.active_count() <= before + apixo._client._POOL_SIZE
    assert [t.tag for t in tasks] == prompts
    assert all(t.succeeded and len(t.urls) == 1 for t in tasks)
    assert len({t.id for t in tasks}) == 50
    # the engine and dispatcher threads existed before; nothing was added per task: the
    # client's fixed pool for submits, and asyncio.run's loop may start one
    # default-executor thread at shutdown
    assert max(samples) <= baseline + apixo._client._POOL_SIZE + 1, (baseline, max(samples))
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


def test_async_parity_calls(sim, tmp_path):
    async def main():
        async with make_client(sim) as client:
            tid = await client.asubmit(uniq("parity"), max_images=2)
            assert isinstance(tid, str) and tid.startswith("task_")
            first = await client.astatus(tid)
            assert first.id == tid
            seen = []
            task = await client.awatch(tid, timeout=30, on_update=seen.append)
            assert task.succeeded and seen and seen[-1] == task
            paths = await task.asave(tmp_path)
            assert len(paths) == 2 and all(p.startswith(str(tmp_path)) for p in paths)
            one = await client.adownload(task.urls[0], tmp_path / "one.jpg")
            assert one.endswith("one.jpg")
        assert client.closed
        return client

    client = asyncio.run(main())
    with pytest.raises(apixo.ClosedError):
        client.stats()


def test_a_cancelled_agenerate_stops_tracking_and_names_its_task(sim):
    sim.faults({"kind": "delay", "ms": 3000, "endpoint": "statusTask", "count": 5})

    async def main(client):
        job = asyncio.ensure_future(client.agenerate(uniq("cancel me"), max_images=1))
        while client.stats().pending_callbacks == 0:  # submitted, now being waited for
            await asyncio.sleep(0.01)
        job.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await job
        return info.value

    with make_client(sim) as client:
        err = asyncio.run(main(client))
        assert err.apixo_task_id and err.apixo_task_id.startswith("task_")
        assert any(err.apixo_task_id in note for note in getattr(err, "__notes__", [err.apixo_task_id]))
        # nothing left for drain to wait for (the cancellation is delivered on the dispatcher)
        assert wait_until(lambda: client.stats().pending_callbacks == 0, 5)
        client.drain(timeout=1)


def test_an_agenerate_timeout_carries_the_task_id(client):
    async def main():
        with pytest.raises(apixo.TimeoutError) as info:
            await client.agenerate(uniq("slow"), max_images=1, resolution="3K", timeout=0.1)
        return info.value

    err = asyncio.run(main())
    assert err.task_id and err.task_id.startswith("task_") and err.submitted is True
    # tracking stopped: the registration's cancellation is delivered on the dispatcher
    assert wait_until(lambda: client.stats().pending_callbacks == 0, 5)
    assert client.wait(err.task_id, timeout=30).succeeded


def test_on_update_sees_each_state_change(sim):
    sim_states = []
    with make_client(sim) as client:
        task = client.generate(uniq("watched"), max_images=1, timeout=30,
                               on_update=lambda t: sim_states.append(t.state))
        assert task.succeeded
    assert sim_states[-1] == "success"
    # no state repeats: each call is a change
    assert all(a != b for a, b in zip(sim_states, sim_states[1:])), sim_states


def test_async_client_runs_everything_on_the_loop_thread(sim, tmp_path):
    """AsyncClient: the queue delivery mode; completions, on_done callbacks and log lines
    run on the event loop's thread, and the client has no dispatcher thread."""
    import logging

    prompts = [uniq(f"queue {i}") for i in range(20)]
    threads = {"done": set(), "log": set()}

    class Record(logging.Handler):
        def emit(self, record):
            threads["log"].add(threading.get_ident())

    lg = logging.getLogger("apixo.test.queue")
    lg.setLevel(logging.DEBUG)
    lg.addHandler(Record())

    async def main():
        samples = []
        async with apixo.AsyncClient(api_key=sim.key, base_url=sim.api,
                                     time_scale=sim.time_scale, logger=lg) as client:
            loop_thread = threading.get_ident()
            got = []
            client.submit(uniq("with on_done"), max_images=1,
                          on_done=lambda t, e: (threads["done"].add(threading.get_ident()),
                                                got.append(e)))
            samples.append(os_thread_count())
            tasks = await asyncio.gather(*(client.agenerate(p, max_images=1, timeout=60)
                                           for p in prompts))
            samples.append(os_thread_count())
            while not got:
                await asyncio.sleep(0.01)
            saved = await tasks[0].asave(tmp_path)
        return loop_thread, tasks, got, saved, samples

    with make_client(sim) as threaded:
        threaded_count = os_thread_count()
    baseline = os_thread_count()
    loop_thread, tasks, got, saved, samples = asyncio.run(main())
    assert all(t.succeeded for t in tasks) and got == [None] and len(saved) == 1
    assert threads["done"] == {loop_thread}
    assert threads["log"] == {loop_thread}, threads["log"]
    # an engine thread and the fixed submit pool; no dispatcher (a threaded client has one)
    assert max(samples) <= baseline + 1 + apixo._client._POOL_SIZE
    assert threaded_count == baseline + 2  # engine + dispatcher, for comparison


def test_async_client_cancellation_and_timeout(sim):
    sim.faults({"kind": "delay", "ms": 3000, "endpoint": "statusTask", "count": 5})

    async def main():
        async with apixo.AsyncClient(api_key=sim.key, base_url=sim.api,
                                     time_scale=sim.time_scale) as client:
            job = asyncio.ensure_future(client.agenerate(uniq("cancel me"), max_images=1))
            while client.stats().pending_callbacks == 0:
                await asyncio.sleep(0.01)
            job.cancel()
            with pytest.raises(asyncio.CancelledError) as info:
                await job
            while client.stats().pending_callbacks:  # the cancellation runs on this loop
                await asyncio.sleep(0.01)
            with pytest.raises(apixo.TimeoutError) as late:
                await client.agenerate(uniq("slow"), max_images=1, timeout=0.2)
            return info.value, late.value

    cancelled, timed_out = asyncio.run(main())
    assert cancelled.apixo_task_id.startswith("task_")
    assert timed_out.task_id.startswith("task_")
