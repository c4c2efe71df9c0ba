"""Bad input of every kind gets an error code, never a crash or a hang: random and mutated
webhook bodies, input JSON values and journal files, straight through the C ABI.

Seeded and bounded, so a failure is reproducible and the file runs in a few seconds."""

from __future__ import annotations

import ctypes
import json
import os
import random

import apixo
from apixo import _native as N
from conftest import make_client

GOOD = json.dumps({"code": 200, "message": "success", "data": {
    "taskId": "task_x", "state": "success", "createTime": 1, "completeTime": 2, "costTime": 1,
    "resultJson": json.dumps({"resultUrls": ["http://127.0.0.1/files/a.jpg"]})}}).encode()

CODES = {N.APIXO_OK, N.APIXO_ERR_INVALID_ARGUMENT, N.APIXO_ERR_NOT_FOUND, N.APIXO_ERR_PROTOCOL}


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(4)
        if op == 0 and b:
            del b[rng.randrange(len(b)):rng.randrange(len(b)) + 1]
        elif op == 1:
            b.insert(rng.randrange(len(b) + 1), rng.randrange(256))
        elif op == 2 and b:
            b[rng.randrange(len(b))] = rng.choice(b'{}[]":,0123456789\\\x00\xff')
        else:
            cut = rng.randrange(len(b) + 1)
            b = b[:cut]
    return bytes(b)


def test_webhook_ingest_survives_garbage(sim):
    rng = random.Random(1234)
    with make_client(sim) as c:
        lib = N.lib
        handle = c._core.handle  # the apixo_client *
        task_p = lib.apixo_webhook_ingest.argtypes[3]._type_  # apixo_task *
        seen = set()
        for i in range(3000):
            body = mutate(rng, GOOD) if i % 3 else bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            out = task_p()
            rc = lib.apixo_webhook_ingest(handle, body, len(body), ctypes.byref(out))
            assert rc in CODES, (rc, body)
            seen.add(rc)
            if out:
                assert rc in (N.APIXO_OK, N.APIXO_ERR_NOT_FOUND)
                lib.apixo_task_free(out)
            if rc != N.APIXO_OK:
                assert lib.apixo_last_error()  # a message, never NULL
        assert N.APIXO_ERR_PROTOCOL in seen and N.APIXO_ERR_NOT_FOUND in seen


def test_input_json_survives_garbage():
    rng = random.Random(99)
    lib = N.lib
    samples = [b'"2K"', b"10", b"[\"https://a/b.png\"]", b"true", b'{"x":[1,2,{"y":null}]}', b"1e999", b"-0"]
    fields = [b"prompt", b"max_images", b"resolution", b"image_urls", b"web_search", b"extra", b"aspect_ratio"]
    for model in (b"seedream-5-0", b"seedream-4-5", b"flux-2"):
        req = lib.apixo_request_new(model)
        assert req
        for _ in range(1500):
            value = mutate(rng, rng.choice(samples))
            rc = lib.apixo_request_set_input_json(req, rng.choice(fields), value)
            assert rc in (N.APIXO_OK, N.APIXO_ERR_INVALID_ARGUMENT)
            out = ctypes.c_char_p()
            assert lib.apixo_request_to_json(req, ctypes.byref(out)) == N.APIXO_OK
            json.loads(out.value)  # whatever was accepted serialises to valid JSON
            lib.apixo_free(out)
        lib.apixo_request_free(req)


def test_corrupt_journal_files_never_crash(sim, tmp_path):
    rng = random.Random(7)
    path = tmp_path / "j"
    with make_client(sim, journal=str(path)) as c:
        for i in range(3):
            c.submit(f"journal fuzz {i}", max_images=1, tag=f"t{i}")
    good = path.read_bytes()
    assert good
    for i in range(60):
        path.write_bytes(mutate(rng, good) if i % 4 else os.urandom(rng.randrange(1, 300)))
        try:
            with make_client(sim, journal=str(path)) as c:
                c.resume(on_done=lambda task, err: None)
                c.drain(timeout=30)
        except apixo.Error as e:  # a clear error is fine; a crash or hang is not
            assert e.code in (N.APIXO_ERR_IO, N.APIXO_ERR_PROTOCOL), e
