"""ctypes mirror of include/apixo.h, one declaration per C function.

Each C prototype is written beside its ctypes declaration; ``tests/test_native.py``
parses the header and fails if a function is missing here or declared with other
types. This module only loads the library and declares types: the Pythonic layer
lives in :mod:`apixo._client`.

The shared library is found through, in order:

1. the ``APIXO_LIBRARY`` environment variable (a path to ``libapixo.so``; only that);
2. a copy inside this package (``apixo/libapixo.so``, put there by the wheel build);
3. ``build/lib/libapixo.so`` of the repository this package sits in (an editable install
   or the source tree, after ``make``);
4. the system loader (``ctypes.util.find_library("apixo")``, then ``libapixo.so``).
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_int,
    c_int64,
    c_long,
    c_size_t,
    c_uint64,
    c_void_p,
)
TYPE_CHECKING = False  # typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["LIBRARY_PATH", "FUNCTIONS", "lib"]

_BUILD_HINT = (
    "build it from the repository root with `make` (it lands in build/lib/libapixo.so) and "
    "reinstall the package (`pip install ./bindings/python` then bundles it), or set "
    "APIXO_LIBRARY=/path/to/build/lib/libapixo.so"
)


def _candidates() -> Iterator[str]:
    """The paths to try, in order; lazily, so that the slow system search
    (``ctypes.util.find_library`` runs ldconfig) happens only when nothing before it loads."""
    env = os.environ.get("APIXO_LIBRARY")
    if env:
        yield env
        return  # an explicit path is never second-guessed (see _load)
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libapixo.so")
    # an editable install or the source tree: the library `make` built at the repository root
    yield os.path.normpath(os.path.join(here, "..", "..", "..", "build", "lib", "libapixo.so"))
    import ctypes.util

    found = ctypes.util.find_library("apixo")
    if found:
        yield found
    yield "libapixo.so"


def _load() -> Tuple[ctypes.CDLL, str]:
    errors: List[str] = []
    env = os.environ.get("APIXO_LIBRARY")
    for path in _candidates():
        # a package-local path that does not exist is not worth a dlopen error line
        if os.sep in path and not os.path.exists(path):
            errors.append(f"{path}: no such file")
            if path == env:
                # an explicit APIXO_LIBRARY that is wrong is an error, not a hint to look
                # elsewhere: loading some other copy silently would hide the mistake
                break
            continue
        try:
            # CDLL (not PyDLL): ctypes releases the GIL for the duration of every call
            return ctypes.CDLL(path), path
        except OSError as exc:
            errors.append(f"{path}: {exc}")
            if path == env:
                break
    raise ImportError(
        "apixo: cannot load libapixo.so; tried:\n  "
        + "\n  ".join(errors)
        + "\n"
        + _BUILD_HINT
    )


lib, LIBRARY_PATH = _load()

#: name -> (restype, argtypes, C prototype) for every function declared below
FUNCTIONS: Dict[str, Tuple[Any, Sequence[Any], str]] = {}


def _declare(prototype: str, name: str, restype: Any, argtypes: Sequence[Any]) -> Any:
    try:
        fn = getattr(lib, name)
    except AttributeError:
        raise ImportError(
            f"apixo: {LIBRARY_PATH} does not export {name} (a library older than this "
            f"package?); {_BUILD_HINT}"
        ) from None
    fn.restype = restype
    fn.argtypes = list(argtypes)
    FUNCTIONS[name] = (restype, list(argtypes), prototype)
    return fn


# ---------------------------------------------------------------------------
# Opaque handles: distinct pointer types, so that a task cannot be passed where
# a client is expected (ctypes raises ArgumentError).
# ---------------------------------------------------------------------------


class apixo_options(Structure):
    """typedef struct apixo_options apixo_options;"""


class apixo_client(Structure):
    """typedef struct apixo_client apixo_client;"""


class apixo_request(Structure):
    """typedef struct apixo_request apixo_request;"""


class apixo_task(Structure):
    """typedef struct apixo_task apixo_task;"""


class apixo_event(Structure):
    """typedef struct apixo_event apixo_event;"""


apixo_options_p = POINTER(apixo_options)
apixo_client_p = POINTER(apixo_client)
apixo_request_p = POINTER(apixo_request)
apixo_task_p = POINTER(apixo_task)
apixo_event_p = POINTER(apixo_event)

# enums are ints in the C ABI
apixo_code = c_int
apixo_state = c_int
apixo_delivery = c_int
apixo_event_kind = c_int

# ---------------------------------------------------------------------------
# Version and errors
# ---------------------------------------------------------------------------

APIXO_VERSION_MAJOR = 0
APIXO_VERSION_MINOR = 1
APIXO_VERSION_PATCH = 0
APIXO_VERSION_STRING = "0.1.0"

APIXO_OK = 0
APIXO_ERR_INVALID_ARGUMENT = 1
APIXO_ERR_BAD_REQUEST = 2
APIXO_ERR_UNAUTHORIZED = 3
APIXO_ERR_PAYMENT_REQUIRED = 4
APIXO_ERR_FORBIDDEN = 5
APIXO_ERR_NOT_FOUND = 6
APIXO_ERR_RATE_LIMITED = 7
APIXO_ERR_SERVER = 8
APIXO_ERR_NETWORK = 9
APIXO_ERR_TIMEOUT = 10
APIXO_ERR_PROTOCOL = 11
APIXO_ERR_TASK_FAILED = 12
APIXO_ERR_CANCELLED = 13
APIXO_ERR_CLOSED = 14
APIXO_ERR_IO = 15
APIXO_ERR_NO_MEMORY = 16
APIXO_ERR_INDETERMINATE = 17
APIXO_CODE_FORCE_32BIT = 0x7FFFFFFF

# const char *apixo_version(void);
apixo_version = _declare(
    "const char *apixo_version(void);", "apixo_version", c_char_p, [])

# const char *apixo_code_name(apixo_code code);
apixo_code_name = _declare(
    "const char *apixo_code_name(apixo_code code);", "apixo_code_name", c_char_p, [apixo_code])

# const char *apixo_last_error(void);
apixo_last_error = _declare(
    "const char *apixo_last_error(void);", "apixo_last_error", c_char_p, [])

# void apixo_free(void *ptr);
apixo_free = _declare("void apixo_free(void *ptr);", "apixo_free", None, [c_void_p])

# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------

APIXO_LOG_DEBUG = 0
APIXO_LOG_INFO = 1
APIXO_LOG_WARN = 2
APIXO_LOG_ERROR = 3

# typedef void (*apixo_log_fn)(int level, const char *message, void *user_data);
apixo_log_fn = CFUNCTYPE(None, c_int, c_char_p, c_void_p)

# apixo_options *apixo_options_new(void);
apixo_options_new = _declare(
    "apixo_options *apixo_options_new(void);", "apixo_options_new", apixo_options_p, [])

# void apixo_options_free(apixo_options *opts);
apixo_options_free = _declare(
    "void apixo_options_free(apixo_options *opts);", "apixo_options_free", None,
    [apixo_options_p])

# apixo_code apixo_options_set_api_key(apixo_options *opts, const char *key);
apixo_options_set_api_key = _declare(
    "apixo_code apixo_options_set_api_key(apixo_options *opts, const char *key);",
    "apixo_options_set_api_key", apixo_code, [apixo_options_p, c_char_p])

# apixo_code apixo_options_set_base_url(apixo_options *opts, const char *url);
apixo_options_set_base_url = _declare(
    "apixo_code apixo_options_set_base_url(apixo_options *opts, const char *url);",
    "apixo_options_set_base_url", apixo_code, [apixo_options_p, c_char_p])

# apixo_code apixo_options_set_timeout_ms(apixo_options *opts, long ms);
apixo_options_set_timeout_ms = _declare(
    "apixo_code apixo_options_set_timeout_ms(apixo_options *opts, long ms);",
    "apixo_options_set_timeout_ms", apixo_code, [apixo_options_p, c_long])

# apixo_code apixo_options_set_max_retries(apixo_options *opts, int n);
apixo_options_set_max_retries = _declare(
    "apixo_code apixo_options_set_max_retries(apixo_options *opts, int n);",
    "apixo_options_set_max_retries", apixo_code, [apixo_options_p, c_int])

# apixo_code apixo_options_set_limits(apixo_options *opts, int requests_per_minute,
#                                     int max_concurrent_tasks);
apixo_options_set_limits = _declare(
    "apixo_code apixo_options_set_limits(apixo_options *opts, int requests_per_minute, "
    "int max_concurrent_tasks);",
    "apixo_options_set_limits", apixo_code, [apixo_options_p, c_int, c_int])

# apixo_code apixo_options_set_time_scale(apixo_options *opts, double scale);
apixo_options_set_time_scale = _declare(
    "apixo_code apixo_options_set_time_scale(apixo_options *opts, double scale);",
    "apixo_options_set_time_scale", apixo_code, [apixo_options_p, c_double])

# apixo_code apixo_options_set_ca_file(apixo_options *opts, const char *path);
apixo_options_set_ca_file = _declare(
    "apixo_code apixo_options_set_ca_file(apixo_options *opts, const char *path);",
    "apixo_options_set_ca_file", apixo_code, [apixo_options_p, c_char_p])

# apixo_code apixo_options_set_logger(apixo_options *opts, apixo_log_fn fn, int min_level,
#                                     void *user_data);
apixo_options_set_logger = _declare(
    "apixo_code apixo_options_set_logger(apixo_options *opts, apixo_log_fn fn, "
    "int min_level, void *user_data);",
    "apixo_options_set_logger", apixo_code, [apixo_options_p, apixo_log_fn, c_int, c_void_p])

# apixo_code apixo_options_set_max_download_bytes(apixo_options *opts, int64_t max_bytes);
apixo_options_set_max_download_bytes = _declare(
    "apixo_code apixo_options_set_max_download_bytes(apixo_options *opts, int64_t max_bytes);",
    "apixo_options_set_max_download_bytes", apixo_code, [apixo_options_p, c_int64])

APIXO_DELIVERY_THREAD = 0
APIXO_DELIVERY_QUEUE = 1
APIXO_DELIVERY_FORCE_32BIT = 0x7FFFFFFF

# apixo_code apixo_options_set_delivery(apixo_options *opts, apixo_delivery mode);
apixo_options_set_delivery = _declare(
    "apixo_code apixo_options_set_delivery(apixo_options *opts, apixo_delivery mode);",
    "apixo_options_set_delivery", apixo_code, [apixo_options_p, apixo_delivery])

# apixo_code apixo_options_set_max_retry_after_ms(apixo_options *opts, long ms);
apixo_options_set_max_retry_after_ms = _declare(
    "apixo_code apixo_options_set_max_retry_after_ms(apixo_options *opts, long ms);",
    "apixo_options_set_max_retry_after_ms", apixo_code, [apixo_options_p, c_long])

# apixo_code apixo_options_set_download_timeout_ms(apixo_options *opts, long ms);
apixo_options_set_download_timeout_ms = _declare(
    "apixo_code apixo_options_set_download_timeout_ms(apixo_options *opts, long ms);",
    "apixo_options_set_download_timeout_ms", apixo_code, [apixo_options_p, c_long])

# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------

# apixo_code apixo_client_new(const apixo_options *opts, apixo_client **out);
apixo_client_new = _declare(
    "apixo_code apixo_client_new(const apixo_options *opts, apixo_client **out);",
    "apixo_client_new", apixo_code, [apixo_options_p, POINTER(apixo_client_p)])

# void apixo_client_free(apixo_client *client);
apixo_client_free = _declare(
    "void apixo_client_free(apixo_client *client);", "apixo_client_free", None,
    [apixo_client_p])

# apixo_code apixo_client_stats(apixo_client *c, int64_t *queued_submits, int64_t *slots_in_use,
#                               int64_t *tracked_tasks, int64_t *requests_in_window,
#                               int64_t *pending_callbacks);
apixo_client_stats = _declare(
    "apixo_code apixo_client_stats(apixo_client *c, int64_t *queued_submits, "
    "int64_t *slots_in_use, int64_t *tracked_tasks, int64_t *requests_in_window, "
    "int64_t *pending_callbacks);",
    "apixo_client_stats", apixo_code,
    [apixo_client_p, POINTER(c_int64), POINTER(c_int64), POINTER(c_int64), POINTER(c_int64),
     POINTER(c_int64)])

# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

# apixo_request *apixo_request_new(const char *model);
apixo_request_new = _declare(
    "apixo_request *apixo_request_new(const char *model);", "apixo_request_new",
    apixo_request_p, [c_char_p])

# void apixo_request_free(apixo_request *req);
apixo_request_free = _declare(
    "void apixo_request_free(apixo_request *req);", "apixo_request_free", None,
    [apixo_request_p])

# apixo_code apixo_request_set_prompt(apixo_request *req, const char *prompt);
apixo_request_set_prompt = _declare(
    "apixo_code apixo_request_set_prompt(apixo_request *req, const char *prompt);",
    "apixo_request_set_prompt", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_mode(apixo_request *req, const char *mode);
apixo_request_set_mode = _declare(
    "apixo_code apixo_request_set_mode(apixo_request *req, const char *mode);",
    "apixo_request_set_mode", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_add_image_url(apixo_request *req, const char *url);
apixo_request_add_image_url = _declare(
    "apixo_code apixo_request_add_image_url(apixo_request *req, const char *url);",
    "apixo_request_add_image_url", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_max_images(apixo_request *req, int n);
apixo_request_set_max_images = _declare(
    "apixo_code apixo_request_set_max_images(apixo_request *req, int n);",
    "apixo_request_set_max_images", apixo_code, [apixo_request_p, c_int])

# apixo_code apixo_request_set_resolution(apixo_request *req, const char *resolution);
apixo_request_set_resolution = _declare(
    "apixo_code apixo_request_set_resolution(apixo_request *req, const char *resolution);",
    "apixo_request_set_resolution", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_aspect_ratio(apixo_request *req, const char *ratio);
apixo_request_set_aspect_ratio = _declare(
    "apixo_code apixo_request_set_aspect_ratio(apixo_request *req, const char *ratio);",
    "apixo_request_set_aspect_ratio", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_sequential(apixo_request *req, const char *mode);
apixo_request_set_sequential = _declare(
    "apixo_code apixo_request_set_sequential(apixo_request *req, const char *mode);",
    "apixo_request_set_sequential", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_web_search(apixo_request *req, int enabled);
apixo_request_set_web_search = _declare(
    "apixo_code apixo_request_set_web_search(apixo_request *req, int enabled);",
    "apixo_request_set_web_search", apixo_code, [apixo_request_p, c_int])

# apixo_code apixo_request_set_output_format(apixo_request *req, const char *format);
apixo_request_set_output_format = _declare(
    "apixo_code apixo_request_set_output_format(apixo_request *req, const char *format);",
    "apixo_request_set_output_format", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_prompt_optimize_mode(apixo_request *req, const char *mode);
apixo_request_set_prompt_optimize_mode = _declare(
    "apixo_code apixo_request_set_prompt_optimize_mode(apixo_request *req, const char *mode);",
    "apixo_request_set_prompt_optimize_mode", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_provider(apixo_request *req, const char *provider);
apixo_request_set_provider = _declare(
    "apixo_code apixo_request_set_provider(apixo_request *req, const char *provider);",
    "apixo_request_set_provider", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_callback_url(apixo_request *req, const char *url);
apixo_request_set_callback_url = _declare(
    "apixo_code apixo_request_set_callback_url(apixo_request *req, const char *url);",
    "apixo_request_set_callback_url", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_set_input_json(apixo_request *req, const char *key,
#                                         const char *json_value);
apixo_request_set_input_json = _declare(
    "apixo_code apixo_request_set_input_json(apixo_request *req, const char *key, "
    "const char *json_value);",
    "apixo_request_set_input_json", apixo_code, [apixo_request_p, c_char_p, c_char_p])

# apixo_code apixo_request_set_tag(apixo_request *req, const char *tag);
apixo_request_set_tag = _declare(
    "apixo_code apixo_request_set_tag(apixo_request *req, const char *tag);",
    "apixo_request_set_tag", apixo_code, [apixo_request_p, c_char_p])

# apixo_code apixo_request_validate(const apixo_request *req);
apixo_request_validate = _declare(
    "apixo_code apixo_request_validate(const apixo_request *req);",
    "apixo_request_validate", apixo_code, [apixo_request_p])

# apixo_code apixo_request_to_json(const apixo_request *req, char **json_out);
apixo_request_to_json = _declare(
    "apixo_code apixo_request_to_json(const apixo_request *req, char **json_out);",
    "apixo_request_to_json", apixo_code, [apixo_request_p, POINTER(c_char_p)])

# apixo_request *apixo_request_copy(const apixo_request *req);
apixo_request_copy = _declare(
    "apixo_request *apixo_request_copy(const apixo_request *req);", "apixo_request_copy",
    apixo_request_p, [apixo_request_p])

# ---------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------

APIXO_STATE_PENDING = 0
APIXO_STATE_PROCESSING = 1
APIXO_STATE_SUCCESS = 2
APIXO_STATE_FAILED = 3
APIXO_STATE_FORCE_32BIT = 0x7FFFFFFF

# const char *apixo_state_name(apixo_state state);
apixo_state_name = _declare(
    "const char *apixo_state_name(apixo_state state);", "apixo_state_name", c_char_p,
    [apixo_state])

# const char *apixo_task_id(const apixo_task *t);
apixo_task_id = _declare(
    "const char *apixo_task_id(const apixo_task *t);", "apixo_task_id", c_char_p,
    [apixo_task_p])

# const char *apixo_task_model(const apixo_task *t);
apixo_task_model = _declare(
    "const char *apixo_task_model(const apixo_task *t);", "apixo_task_model", c_char_p,
    [apixo_task_p])

# apixo_state apixo_task_state(const apixo_task *t);
apixo_task_state = _declare(
    "apixo_state apixo_task_state(const apixo_task *t);", "apixo_task_state", apixo_state,
    [apixo_task_p])

# size_t apixo_task_result_count(const apixo_task *t);
apixo_task_result_count = _declare(
    "size_t apixo_task_result_count(const apixo_task *t);", "apixo_task_result_count",
    c_size_t, [apixo_task_p])

# const char *apixo_task_result_url(const apixo_task *t, size_t index);
apixo_task_result_url = _declare(
    "const char *apixo_task_result_url(const apixo_task *t, size_t index);",
    "apixo_task_result_url", c_char_p, [apixo_task_p, c_size_t])

# const char *apixo_task_fail_code(const apixo_task *t);
apixo_task_fail_code = _declare(
    "const char *apixo_task_fail_code(const apixo_task *t);", "apixo_task_fail_code",
    c_char_p, [apixo_task_p])

# const char *apixo_task_fail_message(const apixo_task *t);
apixo_task_fail_message = _declare(
    "const char *apixo_task_fail_message(const apixo_task *t);", "apixo_task_fail_message",
    c_char_p, [apixo_task_p])

# int64_t apixo_task_create_time_ms(const apixo_task *t);
apixo_task_create_time_ms = _declare(
    "int64_t apixo_task_create_time_ms(const apixo_task *t);", "apixo_task_create_time_ms",
    c_int64, [apixo_task_p])

# int64_t apixo_task_complete_time_ms(const apixo_task *t);
apixo_task_complete_time_ms = _declare(
    "int64_t apixo_task_complete_time_ms(const apixo_task *t);",
    "apixo_task_complete_time_ms", c_int64, [apixo_task_p])

# int64_t apixo_task_cost_time_ms(const apixo_task *t);
apixo_task_cost_time_ms = _declare(
    "int64_t apixo_task_cost_time_ms(const apixo_task *t);", "apixo_task_cost_time_ms",
    c_int64, [apixo_task_p])

# const char *apixo_task_json(const apixo_task *t);
apixo_task_json = _declare(
    "const char *apixo_task_json(const apixo_task *t);", "apixo_task_json", c_char_p,
    [apixo_task_p])

# const char *apixo_task_tag(const apixo_task *t);
apixo_task_tag = _declare(
    "const char *apixo_task_tag(const apixo_task *t);", "apixo_task_tag", c_char_p,
    [apixo_task_p])

# apixo_task *apixo_task_copy(const apixo_task *t);
apixo_task_copy = _declare(
    "apixo_task *apixo_task_copy(const apixo_task *t);", "apixo_task_copy", apixo_task_p,
    [apixo_task_p])

# void apixo_task_free(apixo_task *t);
apixo_task_free = _declare(
    "void apixo_task_free(apixo_task *t);", "apixo_task_free", None, [apixo_task_p])

# ---------------------------------------------------------------------------
# Blocking calls
# ---------------------------------------------------------------------------

# apixo_code apixo_submit(apixo_client *c, const apixo_request *req, char **task_id_out);
apixo_submit = _declare(
    "apixo_code apixo_submit(apixo_client *c, const apixo_request *req, char **task_id_out);",
    "apixo_submit", apixo_code, [apixo_client_p, apixo_request_p, POINTER(c_char_p)])

# apixo_code apixo_submit_timeout(apixo_client *c, const apixo_request *req, long queue_timeout_ms,
#                                 char **task_id_out);
apixo_submit_timeout = _declare(
    "apixo_code apixo_submit_timeout(apixo_client *c, const apixo_request *req, "
    "long queue_timeout_ms, char **task_id_out);",
    "apixo_submit_timeout", apixo_code,
    [apixo_client_p, apixo_request_p, c_long, POINTER(c_char_p)])

# apixo_code apixo_get_status(apixo_client *c, const char *model, const char *task_id,
#                             apixo_task **out);
apixo_get_status = _declare(
    "apixo_code apixo_get_status(apixo_client *c, const char *model, const char *task_id, "
    "apixo_task **out);",
    "apixo_get_status", apixo_code, [apixo_client_p, c_char_p, c_char_p, POINTER(apixo_task_p)])

# apixo_code apixo_wait(apixo_client *c, const char *model, const char *task_id,
#                       long timeout_ms, apixo_task **out);
apixo_wait = _declare(
    "apixo_code apixo_wait(apixo_client *c, const char *model, const char *task_id, "
    "long timeout_ms, apixo_task **out);",
    "apixo_wait", apixo_code,
    [apixo_client_p, c_char_p, c_char_p, c_long, POINTER(apixo_task_p)])

# apixo_code apixo_generate(apixo_client *c, const apixo_request *req, long timeout_ms,
#                           apixo_task **out);
apixo_generate = _declare(
    "apixo_code apixo_generate(apixo_client *c, const apixo_request *req, long timeout_ms, "
    "apixo_task **out);",
    "apixo_generate", apixo_code, [apixo_client_p, apixo_request_p, c_long, POINTER(apixo_task_p)])

# ---------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------

# typedef void (*apixo_task_callback)(apixo_code code, const apixo_task *task, void *user_data);
apixo_task_callback = CFUNCTYPE(None, apixo_code, apixo_task_p, c_void_p)

# apixo_code apixo_submit_async(apixo_client *c, const apixo_request *req,
#                               apixo_task_callback cb, void *user_data);
apixo_submit_async = _declare(
    "apixo_code apixo_submit_async(apixo_client *c, const apixo_request *req, "
    "apixo_task_callback cb, void *user_data);",
    "apixo_submit_async", apixo_code,
    [apixo_client_p, apixo_request_p, apixo_task_callback, c_void_p])

# apixo_code apixo_watch(apixo_client *c, const char *model, const char *task_id,
#                        apixo_task_callback cb, void *user_data);
apixo_watch = _declare(
    "apixo_code apixo_watch(apixo_client *c, const char *model, const char *task_id, "
    "apixo_task_callback cb, void *user_data);",
    "apixo_watch", apixo_code,
    [apixo_client_p, c_char_p, c_char_p, apixo_task_callback, c_void_p])

# apixo_code apixo_cancel(apixo_client *c, const char *task_id);
apixo_cancel = _declare(
    "apixo_code apixo_cancel(apixo_client *c, const char *task_id);", "apixo_cancel",
    apixo_code, [apixo_client_p, c_char_p])

# apixo_code apixo_drain(apixo_client *c, long timeout_ms);
apixo_drain = _declare(
    "apixo_code apixo_drain(apixo_client *c, long timeout_ms);", "apixo_drain", apixo_code,
    [apixo_client_p, c_long])

# ---------------------------------------------------------------------------
# Events: completions on the host's own thread (queue mode)
# ---------------------------------------------------------------------------

APIXO_EVENT_COMPLETION = 0
APIXO_EVENT_LOG = 1
APIXO_EVENT_KIND_FORCE_32BIT = 0x7FFFFFFF

# apixo_code apixo_client_event_fd(apixo_client *c, int *fd_out);
apixo_client_event_fd = _declare(
    "apixo_code apixo_client_event_fd(apixo_client *c, int *fd_out);",
    "apixo_client_event_fd", apixo_code, [apixo_client_p, POINTER(c_int)])

# apixo_code apixo_dispatch(apixo_client *c, size_t max_events, long timeout_ms, size_t *ran_out);
apixo_dispatch = _declare(
    "apixo_code apixo_dispatch(apixo_client *c, size_t max_events, long timeout_ms, "
    "size_t *ran_out);",
    "apixo_dispatch", apixo_code, [apixo_client_p, c_size_t, c_long, POINTER(c_size_t)])

# apixo_code apixo_next_event(apixo_client *c, long timeout_ms, apixo_event **out);
apixo_next_event = _declare(
    "apixo_code apixo_next_event(apixo_client *c, long timeout_ms, apixo_event **out);",
    "apixo_next_event", apixo_code, [apixo_client_p, c_long, POINTER(apixo_event_p)])

# apixo_event_kind apixo_event_kind_of(const apixo_event *e);
apixo_event_kind_of = _declare(
    "apixo_event_kind apixo_event_kind_of(const apixo_event *e);", "apixo_event_kind_of",
    apixo_event_kind, [apixo_event_p])

# apixo_code apixo_event_code(const apixo_event *e);
apixo_event_code = _declare(
    "apixo_code apixo_event_code(const apixo_event *e);", "apixo_event_code", apixo_code,
    [apixo_event_p])

# const apixo_task *apixo_event_task(const apixo_event *e);
apixo_event_task = _declare(
    "const apixo_task *apixo_event_task(const apixo_event *e);", "apixo_event_task",
    apixo_task_p, [apixo_event_p])

# void *apixo_event_user_data(const apixo_event *e);
apixo_event_user_data = _declare(
    "void *apixo_event_user_data(const apixo_event *e);", "apixo_event_user_data", c_void_p,
    [apixo_event_p])

# const char *apixo_event_message(const apixo_event *e);
apixo_event_message = _declare(
    "const char *apixo_event_message(const apixo_event *e);", "apixo_event_message", c_char_p,
    [apixo_event_p])

# int apixo_event_log_level(const apixo_event *e);
apixo_event_log_level = _declare(
    "int apixo_event_log_level(const apixo_event *e);", "apixo_event_log_level", c_int,
    [apixo_event_p])

# void apixo_event_free(apixo_event *e);
apixo_event_free = _declare(
    "void apixo_event_free(apixo_event *e);", "apixo_event_free", None, [apixo_event_p])

# uint64_t apixo_client_log_dropped(const apixo_client *c);
apixo_client_log_dropped = _declare(
    "uint64_t apixo_client_log_dropped(const apixo_client *c);", "apixo_client_log_dropped",
    c_uint64, [apixo_client_p])

# ---------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------

# apixo_code apixo_webhook_ingest(apixo_client *c, const char *body, size_t len,
#                                 apixo_task **out);
apixo_webhook_ingest = _declare(
    "apixo_code apixo_webhook_ingest(apixo_client *c, const char *body, size_t len, "
    "apixo_task **out);",
    "apixo_webhook_ingest", apixo_code,
    [apixo_client_p, c_char_p, c_size_t, POINTER(apixo_task_p)])

# ---------------------------------------------------------------------------
# Journal
# ---------------------------------------------------------------------------

# apixo_code apixo_options_set_journal(apixo_options *opts, const char *path);
apixo_options_set_journal = _declare(
    "apixo_code apixo_options_set_journal(apixo_options *opts, const char *path);",
    "apixo_options_set_journal", apixo_code, [apixo_options_p, c_char_p])

# apixo_code apixo_options_set_shared_budget(apixo_options *opts, const char *url, const char *ns);
apixo_options_set_shared_budget = _declare(
    "apixo_code apixo_options_set_shared_budget(apixo_options *opts, const char *url, const char *ns);",
    "apixo_options_set_shared_budget", apixo_code, [apixo_options_p, c_char_p, c_char_p])

# apixo_code apixo_resume(apixo_client *c, apixo_task_callback cb, void *user_data);
apixo_resume = _declare(
    "apixo_code apixo_resume(apixo_client *c, apixo_task_callback cb, void *user_data);",
    "apixo_resume", apixo_code, [apixo_client_p, apixo_task_callback, c_void_p])

# ---------------------------------------------------------------------------
# Downloads
# ---------------------------------------------------------------------------

# apixo_code apixo_download(apixo_client *c, const char *url, const char *path);
apixo_download = _declare(
    "apixo_code apixo_download(apixo_client *c, const char *url, const char *path);",
    "apixo_download", apixo_code, [apixo_client_p, c_char_p, c_char_p])

# apixo_code apixo_download_results(apixo_client *c, const apixo_task *t, const char *dir,
#                                   char ***paths_out, size_t *count_out);
apixo_download_results = _declare(
    "apixo_code apixo_download_results(apixo_client *c, const apixo_task *t, const char *dir, "
    "char ***paths_out, size_t *count_out);",
    "apixo_download_results", apixo_code,
    [apixo_client_p, apixo_task_p, c_char_p, POINTER(POINTER(c_char_p)), POINTER(c_size_t)])

# void apixo_free_paths(char **paths, size_t count);
apixo_free_paths = _declare(
    "void apixo_free_paths(char **paths, size_t count);", "apixo_free_paths", None,
    [POINTER(c_char_p), c_size_t])


def last_error() -> str:
    """apixo_last_error() of the calling thread, decoded."""
    raw: Optional[bytes] = apixo_last_error()
    return raw.decode("utf-8", "replace") if raw else ""


def take_string(out: c_char_p) -> Optional[str]:
    """Copy an owned ``char *`` (an out-parameter filled by the library) and apixo_free it."""
    raw = out.value
    if raw is None:
        return None
    apixo_free(ctypes.cast(out, c_void_p))
    return raw.decode("utf-8", "replace")
