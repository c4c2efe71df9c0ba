"""Documented C-level behaviours of include/apixo.h, checked through the ctypes mirror:
NULL handling, static strings, ownership, validation leaving requests unchanged."""

from __future__ import annotations

import ctypes
import json
import threading
from ctypes import byref, c_char_p, c_size_t

import pytest

from apixo import _native as N


def test_static_strings():
    assert N.apixo_version() == b"0.1.0"
    assert N.apixo_code_name(N.APIXO_ERR_TIMEOUT) == b"APIXO_ERR_TIMEOUT"
    assert N.apixo_code_name(N.APIXO_ERR_INDETERMINATE) == b"APIXO_ERR_INDETERMINATE"
    assert N.apixo_code_name(999) == b"APIXO_ERR_UNKNOWN"
    names = [N.apixo_state_name(i) for i in range(4)]
    assert names == [b"pending", b"processing", b"success", b"failed"]
    assert N.apixo_state_name(17) == b"unknown"


def test_last_error_is_thread_local_and_never_null():
    out = []
    t = threading.Thread(target=lambda: out.append(N.apixo_last_error()))
    t.start()
    t.join()
    assert out == [b""]
    assert N.apixo_options_set_timeout_ms(None, 10) == N.APIXO_ERR_INVALID_ARGUMENT
    assert N.apixo_last_error()  # names the argument
    assert N.apixo_last_error() is not None


def test_free_null_is_a_no_op():
    N.apixo_free(None)
    N.apixo_options_free(None)
    N.apixo_client_free(None)
    N.apixo_request_free(None)
    N.apixo_task_free(None)
    N.apixo_free_paths(None, 0)


def test_null_task_accessors():
    assert N.apixo_task_id(None) is None
    assert N.apixo_task_result_count(None) == 0
    assert N.apixo_task_result_url(None, 0) is None
    assert N.apixo_task_copy(None).__bool__() is False
    assert N.apixo_request_copy(None).__bool__() is False


def test_null_handles_are_invalid_arguments():
    assert N.apixo_request_set_prompt(None, b"x") == N.APIXO_ERR_INVALID_ARGUMENT
    assert N.apixo_request_validate(None) == N.APIXO_ERR_INVALID_ARGUMENT
    out = c_char_p()
    assert N.apixo_request_to_json(None, byref(out)) == N.APIXO_ERR_INVALID_ARGUMENT
    assert N.apixo_client_new(None, None) == N.APIXO_ERR_INVALID_ARGUMENT
    assert N.apixo_submit(None, None, byref(out)) == N.APIXO_ERR_INVALID_ARGUMENT
    assert N.apixo_drain(None, 0) == N.APIXO_ERR_INVALID_ARGUMENT
    assert N.apixo_webhook_ingest(None, b"{}", 2, None) == N.APIXO_ERR_INVALID_ARGUMENT


def _to_json(req) -> dict:
    out = c_char_p()
    assert N.apixo_request_to_json(req, byref(out)) == N.APIXO_OK
    return json.loads(N.take_string(out))


def test_setters_validate_and_leave_the_request_unchanged():
    req = N.apixo_request_new(None)
    try:
        assert N.apixo_request_set_prompt(req, b"a cat") == N.APIXO_OK
        assert N.apixo_request_set_max_images(req, 2) == N.APIXO_OK
        before = _to_json(req)
        assert N.apixo_request_set_max_images(req, 11) == N.APIXO_ERR_INVALID_ARGUMENT
        assert b"max_images" in N.apixo_last_error()
        assert N.apixo_request_set_resolution(req, b"8K") == N.APIXO_ERR_INVALID_ARGUMENT
        msg = N.apixo_last_error()
        assert b"resolution" in msg and b"2K" in msg  # names the field and the allowed values
        assert N.apixo_request_set_input_json(req, b"web_search", b"not json") == \
            N.APIXO_ERR_INVALID_ARGUMENT
        assert _to_json(req) == before
        assert N.apixo_request_set_input_json(req, b"web_search", b"true") == N.APIXO_OK
        assert _to_json(req)["input"]["web_search"] is True
        assert before["request_type"] == "async"
    finally:
        N.apixo_request_free(req)


def test_request_copy_is_deep():
    req = N.apixo_request_new(b"seedream-4-5")
    N.apixo_request_set_prompt(req, b"one")
    N.apixo_request_set_max_images(req, 1)
    N.apixo_request_set_tag(req, b"mine")
    copy = N.apixo_request_copy(req)
    try:
        N.apixo_request_set_prompt(req, b"two")
        assert _to_json(copy)["input"]["prompt"] == "one"
        assert _to_json(req)["input"]["prompt"] == "two"
        assert "mine" not in json.dumps(_to_json(copy))  # the tag is never sent
        assert N.apixo_request_validate(copy) == N.APIXO_OK
    finally:
        N.apixo_request_free(req)
        N.apixo_request_free(copy)


def test_unknown_models_get_structural_checks_only():
    req = N.apixo_request_new(b"flux-2")
    try:
        assert N.apixo_request_set_prompt(req, b"x") == N.APIXO_OK
        assert N.apixo_request_set_input_json(req, b"anything", b"[1,2]") == N.APIXO_OK
        assert N.apixo_request_set_input_json(req, b"", b"1") == N.APIXO_ERR_INVALID_ARGUMENT
        assert N.apixo_request_validate(req) == N.APIXO_OK  # no max_images rule
    finally:
        N.apixo_request_free(req)


def test_validate_cross_field_rules():
    req = N.apixo_request_new(None)
    try:
        assert N.apixo_request_validate(req) == N.APIXO_ERR_INVALID_ARGUMENT
        assert b"prompt" in N.apixo_last_error()
        N.apixo_request_set_prompt(req, b"x")
        assert N.apixo_request_validate(req) == N.APIXO_ERR_INVALID_ARGUMENT
        assert b"max_images" in N.apixo_last_error()
        N.apixo_request_set_max_images(req, 1)
        assert N.apixo_request_validate(req) == N.APIXO_OK
        N.apixo_request_set_mode(req, b"image-to-image")
        assert N.apixo_request_validate(req) == N.APIXO_ERR_INVALID_ARGUMENT
        assert b"image_urls" in N.apixo_last_error()
    finally:
        N.apixo_request_free(req)


def test_options_defaults_and_ranges():
    opts = N.apixo_options_new()
    try:
        assert N.apixo_options_set_limits(opts, 0, 0) == N.APIXO_OK
        assert N.apixo_options_set_limits(opts, -1, 0) == N.APIXO_ERR_INVALID_ARGUMENT
        assert N.apixo_options_set_max_retries(opts, 0) == N.APIXO_OK
        assert N.apixo_options_set_logger(opts, N.apixo_log_fn(), 0, None) == N.APIXO_OK
        assert N.apixo_options_set_logger(opts, N.apixo_log_fn(), 9, None) == \
            N.APIXO_ERR_INVALID_ARGUMENT
        assert N.apixo_options_set_max_download_bytes(opts, 1) == N.APIXO_OK
        assert N.apixo_options_set_max_download_bytes(opts, 0) == N.APIXO_ERR_INVALID_ARGUMENT
    finally:
        N.apixo_options_free(opts)


def test_null_unsets_optional_strings():
    """The header: NULL unsets the API key, base URL, CA file, journal, callback URL, tag."""
    opts = N.apixo_options_new()
    req = N.apixo_request_new(None)
    try:
        for name in ("apixo_options_set_api_key", "apixo_options_set_base_url",
                     "apixo_options_set_ca_file", "apixo_options_set_journal"):
            assert getattr(N, name)(opts, None) == N.APIXO_OK, (name, N.apixo_last_error())
        assert N.apixo_request_set_callback_url(req, b"https://example.com/h") == N.APIXO_OK
        assert N.apixo_request_set_callback_url(req, None) == N.APIXO_OK, N.apixo_last_error()
        assert _to_json(req)["request_type"] == "async"
        assert N.apixo_request_set_tag(req, None) == N.APIXO_OK
    finally:
        N.apixo_options_free(opts)
        N.apixo_request_free(req)


def test_client_new_sets_out_to_null_on_failure(monkeypatch):
    monkeypatch.delenv("APIXO_API_KEY", raising=False)
    out = N.apixo_client_p()
    ctypes.cast(byref(out), ctypes.POINTER(ctypes.c_void_p))[0] = 8  # a non-NULL sentinel
    assert bool(out)
    assert N.apixo_client_new(None, byref(out)) == N.APIXO_ERR_INVALID_ARGUMENT
    assert not bool(out)


def test_download_results_needs_a_successful_task(client):
    tid = client.submit("x", max_images=1, resolution="3K")
    task = client.status(tid)
    assert task.state in ("pending", "processing")
    paths = ctypes.POINTER(c_char_p)()
    count = c_size_t(7)
    code = N.apixo_download_results(client._core.handle, task._snapshot, b"/tmp/none",
                                    byref(paths), byref(count))
    assert code == N.APIXO_ERR_INVALID_ARGUMENT
    assert count.value == 7  # untouched on failure
