"""The blocking API against the simulator: Client, Task, requests, downloads, options."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest

import apixo
from conftest import make_client


def uniq(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:8]}"


def test_library_version():
    assert apixo.library_version() == "0.1.0"
    assert apixo.__version__ == "0.1.0"


def test_generate_returns_a_complete_task(client, sim, tmp_path):
    prompt = uniq("a cozy cyberpunk cafe")
    task = client.generate(prompt, max_images=2, resolution="2K", aspect_ratio="16:9",
                           timeout=30, tag="order-1")
    assert isinstance(task, apixo.Task)
    assert task.id.startswith("task_")
    assert task.model == "seedream-5-0"
    assert task.state == "success" and task.succeeded and task.done and not task.failed
    assert len(task.urls) == 2 and all(u.startswith(sim.url) for u in task.urls)
    assert task.fail_code is None and task.fail_message is None
    assert task.create_time_ms > 0 and task.complete_time_ms >= task.create_time_ms
    assert task.cost_time_ms > 0 and task.cost_time == task.cost_time_ms / 1000
    assert task.created_at is not None and task.completed_at is not None
    assert task.tag == "order-1"
    assert task.raw["taskId"] == task.id and task.raw["state"] == "success"
    assert "resultJson" in task.raw
    assert task.to_dict()["urls"] == task.urls
    assert task.id in repr(task)
    with pytest.raises(AttributeError):
        task.state = "failed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        apixo.Task()
    assert sim.submits(prompt) == 1

    paths = task.save(tmp_path / "out")
    assert [os.path.basename(p) for p in paths] == [f"{task.id}-1.jpg", f"{task.id}-2.jpg"]
    for p in paths:
        data = Path(p).read_bytes()
        assert data[:3] == b"\xff\xd8\xff"  # JPEG
    assert not [p for p in os.listdir(tmp_path / "out") if ".part-" in p]


def test_png_results_are_saved_as_png(client, tmp_path):
    task = client.generate(uniq("a lighthouse"), max_images=1, output_format="png", timeout=30)
    (path,) = task.save(tmp_path)
    assert path.endswith(".png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_submit_status_wait(client, sim):
    prompt = uniq("a red fox")
    tid = client.submit(prompt, max_images=1)
    assert isinstance(tid, str) and tid.startswith("task_")
    first = client.status(tid)
    assert first.id == tid and first.state in ("pending", "processing", "success")
    task = client.wait(tid, timeout=30)
    assert task.state == "success" and task.id == tid and len(task.urls) == 1
    again = client.status(tid, model="seedream-5-0")
    assert again.state == "success" and again.urls == task.urls
    assert sim.submits(prompt) == 1


def test_wait_timeout_zero_is_one_check(client):
    tid = client.submit(uniq("a slow mountain"), max_images=1, resolution="3K")
    with pytest.raises(apixo.TimeoutError) as info:
        client.wait(tid, timeout=0)
    err = info.value
    assert isinstance(err, TimeoutError)  # the built-in, too
    assert err.code == 10 and err.code_name == "APIXO_ERR_TIMEOUT"
    if err.task is not None:
        assert err.task.id == tid and not err.task.done
    client.wait(tid, timeout=30)


def test_task_failed_error_carries_the_fail_code(client):
    with pytest.raises(apixo.TaskFailedError) as info:
        client.generate(uniq("[fail:CONTENT_VIOLATION] a thing"), max_images=1, timeout=30)
    err = info.value
    assert err.code == 12
    assert err.fail_code == "CONTENT_VIOLATION"
    assert err.fail_message
    assert err.task is not None and err.task.failed and err.task.urls == ()
    assert err.task.fail_code == "CONTENT_VIOLATION"
    assert "CONTENT_VIOLATION" in str(err)


def test_open_fail_codes_pass_through(client):
    tid = client.submit(uniq("[fail:SensitiveContentDetected] x"), max_images=1)
    with pytest.raises(apixo.TaskFailedError) as info:
        client.wait(tid, timeout=30)
    assert info.value.fail_code == "SensitiveContentDetected"


def test_request_json_is_the_body_sent(client):
    body = client.request_json(
        "a cat", max_images=3, resolution="3K", aspect_ratio="21:9", sequential=True,
        web_search=True, output_format="png", provider="official",
        prompt_optimize_mode="standard", callback_url="https://example.com/hook",
        tag="never-sent", extra={"seed": 7})
    assert body["request_type"] == "callback"
    assert body["callback_url"] == "https://example.com/hook"
    assert body["provider"] == "official"
    inp = body["input"]
    assert inp["prompt"] == "a cat" and inp["max_images"] == 3
    assert inp["resolution"] == "3K" and inp["aspect_ratio"] == "21:9"
    assert inp["sequential_image_generation"] == "auto"
    assert inp["web_search"] is True and inp["output_format"] == "png"
    assert inp["prompt_optimize_mode"] == "standard"
    assert inp["seed"] == 7
    assert "never-sent" not in repr(body)


def test_image_to_image(client, sim):
    body = client.request_json("restyle", mode="image-to-image", max_images=1,
                               image_urls=["https://example.com/a.png", "https://example.com/b.jpg"])
    assert body["input"]["mode"] == "image-to-image"
    assert body["input"]["image_urls"] == ["https://example.com/a.png", "https://example.com/b.jpg"]
    with pytest.raises(apixo.InvalidArgumentError, match="image_urls"):
        client.request_json("restyle", mode="image-to-image", max_images=1)
    with pytest.raises(apixo.InvalidArgumentError):
        client.request_json("restyle", mode="image-to-image", max_images=1,
                            image_urls="https://example.com/a.png")
    too_many = [f"https://example.com/{i}.png" for i in range(15)]
    with pytest.raises(apixo.InvalidArgumentError):
        client.request_json("restyle", mode="image-to-image", max_images=1, image_urls=too_many)


@pytest.mark.parametrize("kwargs, field", [
    ({"max_images": 11}, "max_images"),
    ({"max_images": 0}, "max_images"),
    ({"max_images": 1, "resolution": "5K"}, "resolution"),
    ({"max_images": 1, "aspect_ratio": "5:4"}, "aspect_ratio"),
    ({"max_images": 1, "output_format": "gif"}, "output_format"),
    ({"max_images": 1, "sequential": "sometimes"}, "sequential"),
    ({"max_images": 1, "provider": "cheapest"}, "provider"),
    ({"max_images": 1, "mode": "video"}, "mode"),
    ({"max_images": 1, "prompt_optimize_mode": "turbo"}, "prompt_optimize_mode"),
    ({"max_images": 1, "extra": {"max_images": 99}}, "max_images"),
    ({"max_images": 1, "extra": {"bad": object()}}, "bad"),
    ({}, "max_images"),
])
def test_invalid_arguments_are_rejected_locally(client, sim, kwargs, field):
    prompt = uniq("never sent")
    with pytest.raises(apixo.InvalidArgumentError) as info:
        client.submit(prompt, **kwargs)
    err = info.value
    assert isinstance(err, apixo.InvalidRequestError) and isinstance(err, ValueError)
    assert err.code == 1
    assert field.split("_")[0] in str(err), str(err)
    assert sim.submits(prompt) == 0


def test_empty_prompt_is_rejected(client):
    with pytest.raises(apixo.InvalidArgumentError, match="prompt"):
        client.submit("", max_images=1)


def test_other_models_take_any_input(client, sim):
    prompt = uniq("a flux render")
    body = client.request_json(prompt, model="flux-2", extra={"steps": 30, "guidance": [1, 2]})
    assert body["input"]["steps"] == 30 and body["input"]["guidance"] == [1, 2]
    task = client.generate(prompt, model="flux-2", extra={"steps": 30}, timeout=30)
    assert task.model == "flux-2" and task.succeeded
    assert sim.stats()["tasks_created_by_model"].get("flux-2") == 1


def test_seedream_4_5(client):
    task = client.generate(uniq("a tower"), model="seedream-4-5", max_images=1, timeout=30)
    assert task.model == "seedream-4-5" and task.succeeded


def test_unknown_model_is_not_found(client):
    with pytest.raises(apixo.NotFoundError):
        client.submit(uniq("x"), model="no-such-model", extra={"max_images": 1})


def test_unknown_task_is_not_found(client):
    with pytest.raises(apixo.NotFoundError) as info:
        client.status("task_000000000000000000000000")
    assert isinstance(info.value, LookupError)
    with pytest.raises(apixo.NotFoundError):
        client.cancel("task_000000000000000000000000")


def test_download(client, sim, tmp_path):
    task = client.generate(uniq("a boat"), max_images=1, timeout=30)
    dest = tmp_path / "boat.jpg"
    assert client.download(task.urls[0], dest) == str(dest)
    assert dest.read_bytes()[:2] == b"\xff\xd8"
    with pytest.raises(apixo.NotFoundError):
        client.download(sim.url + "/files/task_ffffffffffffffffffffffff-1.jpg", tmp_path / "x.jpg")
    with pytest.raises(apixo.InvalidArgumentError):
        client.download("ftp://example.com/a.jpg", tmp_path / "y.jpg")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(apixo.LocalIOError) as info:
        client.download(task.urls[0], blocker / "z.jpg")
    assert isinstance(info.value, OSError) and info.value.code == 15
    assert not (tmp_path / "x.jpg").exists()


def test_max_download_bytes(sim, tmp_path):
    with make_client(sim, max_download_bytes=100) as c:
        task = c.generate(uniq("a big picture"), max_images=1, timeout=30)
        with pytest.raises(apixo.ProtocolError):
            c.download(task.urls[0], tmp_path / "big.jpg")
        assert not (tmp_path / "big.jpg").exists()
        assert not [p for p in os.listdir(tmp_path) if ".part-" in p]


@pytest.mark.parametrize("kwargs", [
    {"timeout": 0}, {"timeout": -1}, {"max_retries": -1}, {"requests_per_minute": -1},
    {"max_concurrent_tasks": -1}, {"time_scale": 0}, {"time_scale": float("nan")},
    {"max_download_bytes": 0}, {"base_url": "ftp://nope"}, {"api_key": ""},
])
def test_invalid_options(sim, kwargs):
    with pytest.raises(apixo.InvalidArgumentError):
        make_client(sim, **kwargs)


def test_options_accepted(sim, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    with make_client(sim, timeout=5, max_retries=0, requests_per_minute=0,
                     max_concurrent_tasks=0, ca_file=ca, max_download_bytes=1 << 20,
                     logger=False) as c:
        assert c.generate(uniq("options"), max_images=1, timeout=30).succeeded


def test_api_key_and_base_url_from_environment(sim, monkeypatch):
    monkeypatch.setenv("APIXO_API_KEY", sim.key)
    monkeypatch.setenv("APIXO_BASE_URL", sim.api)
    with apixo.Client(time_scale=sim.time_scale) as c:
        assert c.generate(uniq("from env"), max_images=1, timeout=30).succeeded


def test_no_api_key_at_all(sim, monkeypatch):
    monkeypatch.delenv("APIXO_API_KEY", raising=False)
    with pytest.raises(apixo.InvalidArgumentError):
        apixo.Client(base_url=sim.api)


def test_logger_receives_library_lines_without_the_key(sim, caplog):
    secret = "sk-sim"
    caplog.set_level(logging.DEBUG, logger="apixo")
    with make_client(sim, api_key=secret) as c:
        c.generate(uniq("logged"), max_images=1, timeout=30)
    lines = [r for r in caplog.records if r.name == "apixo"]
    assert lines, "the library logged nothing at DEBUG"
    assert all(secret not in r.getMessage() for r in lines)


def test_custom_logger(sim, caplog):
    mine = logging.getLogger("my.app.apixo")
    caplog.set_level(logging.DEBUG, logger="my.app.apixo")
    with make_client(sim, logger=mine) as c:
        c.generate(uniq("logged"), max_images=1, timeout=30)
    assert any(r.name == "my.app.apixo" for r in caplog.records)


def test_close_twice_and_closed_client(sim):
    c = make_client(sim)
    assert not c.closed and "open" in repr(c)
    c.close()
    c.close()
    assert c.closed
    with pytest.raises(apixo.ClosedError) as info:
        c.submit("x", max_images=1)
    assert info.value.code == 14
    with pytest.raises(apixo.ClosedError):
        c.status("task_x")


def test_context_manager_closes(sim):
    with make_client(sim) as c:
        pass
    assert c.closed


def test_close_wakes_a_blocked_wait(sim):
    import threading

    c = make_client(sim)
    tid = c.submit(uniq("a long one"), max_images=1, resolution="3K")
    errors = []

    def waiter():
        try:
            c.wait(tid, timeout=None)
        except apixo.Error as exc:
            errors.append(exc)

    t = threading.Thread(target=waiter)
    t.start()
    import time
    time.sleep(0.05)
    c.close()
    t.join(10)
    assert not t.is_alive()
    # either the task finished first or the wait was woken by close
    assert not errors or isinstance(errors[0], apixo.ClosedError)


def test_unreferenced_client_is_closed_by_the_finalizer(sim):
    import gc

    from conftest import os_thread_count

    before = os_thread_count()
    for _ in range(3):
        c = make_client(sim)
        del c
        gc.collect()
    assert os_thread_count() <= before + 1
