"""The Pythonic layer over :mod:`apixo._native`: ``Client`` and ``Task``."""

from __future__ import annotations

import asyncio
import ctypes
import datetime as _dt
import json
import logging
import os
import threading
import weakref
from ctypes import byref, c_char_p, c_size_t
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Union,
)

from . import _native as N
from ._errors import ClosedError, Error, NotFoundError, TimeoutError, error_for_code

__all__ = ["Client", "Task", "OnDone", "library_version"]

_log = logging.getLogger("apixo")

#: ``on_done(task, error)``: ``task`` is a :class:`Task` or ``None`` (no status
#: exists, e.g. the submit failed); ``error`` is ``None`` on success, else the
#: :class:`apixo.Error` that ended the task (``TaskFailedError``, ``CancelledError``,
#: ``ClosedError``, ``IndeterminateError``, ...).
OnDone = Callable[["Optional[Task]", "Optional[Error]"], Any]

PathLike = Union[str, "os.PathLike[str]"]

_STATES = {N.APIXO_STATE_PENDING: "pending", N.APIXO_STATE_PROCESSING: "processing",
           N.APIXO_STATE_SUCCESS: "success", N.APIXO_STATE_FAILED: "failed"}

_LOG_LEVELS = {N.APIXO_LOG_DEBUG: logging.DEBUG, N.APIXO_LOG_INFO: logging.INFO,
               N.APIXO_LOG_WARN: logging.WARNING, N.APIXO_LOG_ERROR: logging.ERROR}

# the default deadline of generate/wait/agenerate/awatch, in seconds: every wait is
# bounded unless the caller explicitly asks for none (timeout=None)
DEFAULT_WAIT_TIMEOUT = 600.0


def library_version() -> str:
    """The version of the loaded libapixo (``apixo_version()``)."""
    return N.apixo_version().decode()


def _b(value: Optional[str]) -> Optional[bytes]:
    return None if value is None else str(value).encode("utf-8")


def _path(value: PathLike) -> bytes:
    return os.fsencode(os.fspath(value))


def _ms(seconds: Optional[float]) -> int:
    """Seconds (None: no deadline) to the C convention (milliseconds, < 0: none)."""
    if seconds is None:
        return -1
    if seconds < 0:
        raise ValueError("timeout must be >= 0 or None")
    return int(round(seconds * 1000))


def _s(raw: Optional[bytes]) -> Optional[str]:
    return None if raw is None else raw.decode("utf-8", "replace")


def _raise(code: int, task: "Optional[Task]" = None) -> None:
    """Raise the exception for a failed call, with this thread's apixo_last_error()."""
    if code != N.APIXO_OK:
        raise error_for_code(code, N.last_error(), task)


# ---------------------------------------------------------------------------
# Task
# ---------------------------------------------------------------------------


class Task:
    """An immutable snapshot of one task, copied out of the C snapshot.

    Attributes: ``id`` (``""`` when unknown: a journal intent whose submit answer
    was lost), ``model`` (``None`` when unknown), ``state`` (``"pending"``,
    ``"processing"``, ``"success"``, ``"failed"``), ``urls``, ``fail_code`` and
    ``fail_message`` (``None`` unless failed), ``create_time_ms``,
    ``complete_time_ms``, ``cost_time_ms`` (0 when unknown), ``tag`` (the caller's
    tag or ``None``) and ``raw`` (the status ``data`` dict as received).
    """

    __slots__ = ("id", "model", "state", "urls", "fail_code", "fail_message",
                 "create_time_ms", "complete_time_ms", "cost_time_ms", "tag", "raw",
                 "_snapshot", "_core", "__weakref__")

    id: str
    model: Optional[str]
    state: str
    urls: Tuple[str, ...]
    fail_code: Optional[str]
    fail_message: Optional[str]
    create_time_ms: int
    complete_time_ms: int
    cost_time_ms: int
    tag: Optional[str]
    raw: Dict[str, Any]

    def __init__(self) -> None:  # built by _from_native only
        raise TypeError("Task objects are created by apixo.Client")

    @classmethod
    def _from_native(cls, ptr: Any, core: "Optional[_Core]", owned: bool) -> "Task":
        """Copy everything out of a C snapshot. ``owned``: ptr belongs to us (it is
        kept for :meth:`save` and freed with this object); otherwise it is borrowed
        (a callback's) and a copy is kept instead."""
        if not owned:
            ptr = N.apixo_task_copy(ptr)
            if not ptr:
                raise error_for_code(N.APIXO_ERR_NO_MEMORY, "apixo_task_copy failed")
        self = object.__new__(cls)
        try:
            self.id = _s(N.apixo_task_id(ptr)) or ""
            self.model = _s(N.apixo_task_model(ptr))
            state = N.apixo_task_state(ptr)
            self.state = _STATES.get(state) or _s(N.apixo_state_name(state)) or "unknown"
            count = N.apixo_task_result_count(ptr)
            urls = []
            for i in range(count):
                url = _s(N.apixo_task_result_url(ptr, i))
                if url is not None:
                    urls.append(url)
            self.urls = tuple(urls)
            self.fail_code = _s(N.apixo_task_fail_code(ptr))
            self.fail_message = _s(N.apixo_task_fail_message(ptr))
            self.create_time_ms = int(N.apixo_task_create_time_ms(ptr))
            self.complete_time_ms = int(N.apixo_task_complete_time_ms(ptr))
            self.cost_time_ms = int(N.apixo_task_cost_time_ms(ptr))
            self.tag = _s(N.apixo_task_tag(ptr))
            text = _s(N.apixo_task_json(ptr)) or "{}"
            try:
                raw = json.loads(text)
            except ValueError:
                raw = {}
            self.raw = raw if isinstance(raw, dict) else {}
        except BaseException:
            N.apixo_task_free(ptr)
            raise
        self._snapshot = ptr
        self._core = core
        weakref.finalize(self, N.apixo_task_free, ptr)
        return self

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_core"):  # fully built: immutable
            raise AttributeError("Task is immutable")
        object.__setattr__(self, name, value)

    # convenience views -------------------------------------------------------

    @property
    def done(self) -> bool:
        """True when the state is terminal (success or failed)."""
        return self.state in ("success", "failed")

    @property
    def succeeded(self) -> bool:
        return self.state == "success"

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    @property
    def created_at(self) -> Optional[_dt.datetime]:
        """createTime as an aware UTC datetime, or None when unknown."""
        return _when(self.create_time_ms)

    @property
    def completed_at(self) -> Optional[_dt.datetime]:
        """completeTime as an aware UTC datetime, or None until terminal."""
        return _when(self.complete_time_ms)

    @property
    def cost_time(self) -> float:
        """costTime in seconds (0.0 until terminal)."""
        return self.cost_time_ms / 1000.0

    def save(self, directory: PathLike) -> List[str]:
        """Download every result into ``directory`` (created if missing) as
        ``<taskId>-<n>.<ext>``; returns the paths. Blocks; needs the client that
        produced this task to be open (else :class:`ClosedError`)."""
        core = self._core
        if core is None:
            raise ClosedError("this task has no client to download with")
        return core.download_results(self._snapshot, directory)

    def to_dict(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in (
            "id", "model", "state", "urls", "fail_code", "fail_message", "create_time_ms",
            "complete_time_ms", "cost_time_ms", "tag", "raw")}

    def __repr__(self) -> str:
        extra = f" fail_code={self.fail_code!r}" if self.fail_code else ""
        tag = f" tag={self.tag!r}" if self.tag else ""
        return (f"<apixo.Task {self.id or '(no id)'} {self.model} {self.state} "
                f"urls={len(self.urls)}{extra}{tag}>")


def _when(ms: int) -> Optional[_dt.datetime]:
    if not ms:
        return None
    return _dt.datetime.fromtimestamp(ms / 1000.0, tz=_dt.timezone.utc)


def _take_task(ptr: Any, core: "Optional[_Core]") -> Optional[Task]:
    """An owned out-parameter snapshot (possibly NULL) into a Task."""
    if not ptr:
        return None
    return Task._from_native(ptr, core, owned=True)


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

_REQUEST_KEYS = ("model", "max_images", "resolution", "aspect_ratio", "mode", "image_urls",
                 "sequential", "web_search", "output_format", "provider", "callback_url",
                 "prompt_optimize_mode", "tag", "extra")


class _Request:
    """Owns one apixo_request built from keyword arguments."""

    def __init__(self, prompt: str, model: Optional[str] = None, *,
                 max_images: Optional[int] = None,
                 resolution: Optional[str] = None,
                 aspect_ratio: Optional[str] = None,
                 mode: Optional[str] = None,
                 image_urls: Optional[Iterable[str]] = None,
                 sequential: Union[str, bool, None] = None,
                 web_search: Optional[bool] = None,
                 output_format: Optional[str] = None,
                 provider: Optional[str] = None,
                 callback_url: Optional[str] = None,
                 prompt_optimize_mode: Optional[str] = None,
                 tag: Optional[str] = None,
                 extra: Optional[Mapping[str, Any]] = None) -> None:
        self.ptr = N.apixo_request_new(_b(model))
        if not self.ptr:
            msg = N.last_error() or f"cannot create a request for model {model!r}"
            raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, msg)
        try:
            if isinstance(image_urls, (str, bytes)):
                raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT,
                                     "image_urls: expected a list of URLs, not one string")
            if sequential is True:
                sequential = "auto"
            elif sequential is False:
                sequential = "disabled"
            p = self.ptr
            # mode before image_urls and prompt: setters validate against the mode
            if mode is not None:
                _raise(N.apixo_request_set_mode(p, _b(mode)))
            _raise(N.apixo_request_set_prompt(p, _b(prompt)))
            if max_images is not None:
                _raise(N.apixo_request_set_max_images(p, _int(max_images, "max_images")))
            if resolution is not None:
                _raise(N.apixo_request_set_resolution(p, _b(resolution)))
            if aspect_ratio is not None:
                _raise(N.apixo_request_set_aspect_ratio(p, _b(aspect_ratio)))
            for url in image_urls or ():
                _raise(N.apixo_request_add_image_url(p, _b(url)))
            if sequential is not None:
                _raise(N.apixo_request_set_sequential(p, _b(sequential)))
            if web_search is not None:
                _raise(N.apixo_request_set_web_search(p, 1 if web_search else 0))
            if output_format is not None:
                _raise(N.apixo_request_set_output_format(p, _b(output_format)))
            if provider is not None:
                _raise(N.apixo_request_set_provider(p, _b(provider)))
            if callback_url is not None:
                _raise(N.apixo_request_set_callback_url(p, _b(callback_url)))
            if prompt_optimize_mode is not None:
                _raise(N.apixo_request_set_prompt_optimize_mode(p, _b(prompt_optimize_mode)))
            if tag is not None:
                _raise(N.apixo_request_set_tag(p, _b(tag)))
            for key, value in (extra or {}).items():
                try:
                    text = json.dumps(value)
                except (TypeError, ValueError) as exc:
                    raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT,
                                         f"extra[{key!r}]: not JSON-serialisable: {exc}") from None
                _raise(N.apixo_request_set_input_json(p, _b(key), _b(text)))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        ptr, self.ptr = self.ptr, None
        if ptr:
            N.apixo_request_free(ptr)

    def __enter__(self) -> "_Request":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, f"{name}: expected an integer")
    if not -2**31 <= value < 2**31:
        raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, f"{name}: out of range")
    return value


# ---------------------------------------------------------------------------
# The native client and its callbacks
# ---------------------------------------------------------------------------


class _Pending:
    __slots__ = ("fn", "once")

    def __init__(self, fn: OnDone, once: bool) -> None:
        self.fn = fn
        self.once = once


class _Core:
    """Owns the apixo_client handle and every object the C side may call back into.

    It is separate from :class:`Client` so that a finalizer can close the handle
    without keeping the Client alive, and so that tasks can download after the
    Client object itself is gone (as long as it is not closed)."""

    def __init__(self, opts: Any, log_fn: Any) -> None:
        self._lock = threading.Lock()
        self._pending: Dict[int, _Pending] = {}
        self._next_token = 1
        self._lib_threads: set = set()
        self._log_fn = log_fn  # the C logger pointer must outlive the handle
        # one trampoline for every task callback of this client, alive until the handle
        # is freed (apixo_client_free fires every pending callback before returning)
        self._trampoline = N.apixo_task_callback(self._on_native_done)
        self.closing = False
        handle = N.apixo_client_p()
        _raise(N.apixo_client_new(opts, byref(handle)))
        self.handle = handle

    # -- handle access -------------------------------------------------------

    def h(self) -> Any:
        handle = self.handle
        if self.closing or handle is None:
            raise ClosedError("the client is closed")
        return handle

    def close(self, from_finalizer: bool = False) -> None:
        with self._lock:
            if self.closing:
                return
            if threading.get_ident() in self._lib_threads:
                if not from_finalizer:
                    raise RuntimeError(
                        "apixo: Client.close() cannot be called from an on_done callback "
                        "or logger of the same client")
                # dropped from inside a callback: free it from another thread
                threading.Thread(target=self.close, name="apixo-close", daemon=True).start()
                return
            self.closing = True
            handle = self.handle
        if handle is not None:
            # pending callbacks fire with APIXO_ERR_CLOSED while this call blocks
            # (without the GIL, so they can run)
            N.apixo_client_free(handle)
        self.handle = None
        with self._lock:
            self._pending.clear()

    # -- callbacks -----------------------------------------------------------

    def register(self, fn: OnDone, once: bool = True) -> int:
        if not callable(fn):
            raise TypeError("on_done must be callable")
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._pending[token] = _Pending(fn, once)
        return token

    def unregister(self, token: int) -> None:
        with self._lock:
            self._pending.pop(token, None)

    def _on_native_done(self, code: int, task_ptr: Any, user_data: Optional[int]) -> None:
        # Runs on the client's dispatcher thread. Nothing may escape: an exception here
        # would only be printed by ctypes, and the C side must never see one.
        try:
            self._lib_threads.add(threading.get_ident())
            with self._lock:
                entry = self._pending.get(user_data or 0)
                if entry is not None and entry.once:
                    del self._pending[user_data or 0]
            if entry is None:
                _log.warning("apixo: callback for an unknown registration (%s, %s)",
                             user_data, _code_name(code))
                return
            # the library sets this thread's last error to the outcome's message for the call
            message = N.last_error() if code != N.APIXO_OK else ""
            task = Task._from_native(task_ptr, self, owned=False) if task_ptr else None
            error = None if code == N.APIXO_OK else _callback_error(code, task, message)
            entry.fn(task, error)
        except BaseException:  # noqa: BLE001 - user code must never crash the process
            try:
                _log.exception("apixo: exception in on_done callback (ignored)")
            except BaseException:  # pragma: no cover
                pass

    # -- operations that need the core (tasks use them too) -------------------

    def download_results(self, snapshot: Any, directory: PathLike) -> List[str]:
        paths = ctypes.POINTER(c_char_p)()
        count = c_size_t(0)
        _raise(N.apixo_download_results(self.h(), snapshot, _path(directory), byref(paths),
                                        byref(count)))
        try:
            return [os.fsdecode(paths[i]) for i in range(count.value)]
        finally:
            N.apixo_free_paths(paths, count.value)


def _code_name(code: int) -> str:
    return _s(N.apixo_code_name(code)) or str(code)


def _callback_error(code: int, task: Optional[Task], message: str) -> Error:
    """The exception handed to on_done, with the library's message for the outcome."""
    if task is None:
        return error_for_code(code, message or _code_name(code))
    ident = task.id or f"(no id, tag {task.tag!r})"
    return error_for_code(code, f"task {ident}: {message or _code_name(code)}", task)


def _make_logger(logger: logging.Logger) -> Tuple[Any, int]:
    def log(level: int, message: Optional[bytes], _user_data: Any) -> None:
        try:
            logger.log(_LOG_LEVELS.get(level, logging.ERROR), "%s",
                       (message or b"").decode("utf-8", "replace"))
        except BaseException:  # noqa: BLE001 - never raise into C
            pass

    level = logger.getEffectiveLevel()
    if level <= logging.DEBUG:
        min_level = N.APIXO_LOG_DEBUG
    elif level <= logging.INFO:
        min_level = N.APIXO_LOG_INFO
    elif level <= logging.WARNING:
        min_level = N.APIXO_LOG_WARN
    else:
        min_level = N.APIXO_LOG_ERROR
    return N.apixo_log_fn(log), min_level


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------


class Client:
    """A client of the APIXO task API (one libapixo ``apixo_client``).

    Options mirror the C options; ``None`` for ``api_key`` / ``base_url`` falls back
    to the environment (``APIXO_API_KEY``, ``APIXO_BASE_URL``), then to
    ``https://api.apixo.ai/api/v1``. ``timeout`` is per HTTP request, in seconds.
    ``logger`` receives the library's log lines (default: ``logging.getLogger("apixo")``
    at its effective level when the client is created; ``False``: none).

    Every method is thread-safe. Blocking methods release the GIL while they wait.
    Use it as a context manager or call :meth:`close` (safe twice).
    """

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, *,
                 timeout: float = 30.0,
                 max_retries: int = 3,
                 requests_per_minute: int = 60,
                 max_concurrent_tasks: int = 10,
                 time_scale: float = 1.0,
                 ca_file: Optional[PathLike] = None,
                 journal: Optional[PathLike] = None,
                 max_download_bytes: Optional[int] = None,
                 logger: Union[logging.Logger, bool, None] = None) -> None:
        opts = N.apixo_options_new()
        if not opts:
            raise error_for_code(N.APIXO_ERR_NO_MEMORY, "apixo_options_new failed")
        log_fn = None
        try:
            if api_key is not None:
                _raise(N.apixo_options_set_api_key(opts, _b(api_key)))
            if base_url is not None:
                _raise(N.apixo_options_set_base_url(opts, _b(base_url)))
            if timeout is None or timeout <= 0:
                raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, "timeout: must be > 0 seconds")
            _raise(N.apixo_options_set_timeout_ms(opts, max(1, int(round(timeout * 1000)))))
            _raise(N.apixo_options_set_max_retries(opts, _int(max_retries, "max_retries")))
            _raise(N.apixo_options_set_limits(
                opts, _int(requests_per_minute, "requests_per_minute"),
                _int(max_concurrent_tasks, "max_concurrent_tasks")))
            _raise(N.apixo_options_set_time_scale(opts, float(time_scale)))
            if ca_file is not None:
                _raise(N.apixo_options_set_ca_file(opts, _path(ca_file)))
            if journal is not None:
                _raise(N.apixo_options_set_journal(opts, _path(journal)))
            if max_download_bytes is not None:
                if isinstance(max_download_bytes, bool) or not isinstance(max_download_bytes, int):
                    raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT,
                                         "max_download_bytes: expected an integer")
                _raise(N.apixo_options_set_max_download_bytes(opts, max_download_bytes))
            if logger is not False:
                lg = logger if isinstance(logger, logging.Logger) else _log
                log_fn, min_level = _make_logger(lg)
                _raise(N.apixo_options_set_logger(opts, log_fn, min_level, None))
            self._core = _Core(opts, log_fn)
        finally:
            N.apixo_options_free(opts)  # the client copied it
        self._finalizer = weakref.finalize(self, self._core.close, True)

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        """Shut the client down: pending ``on_done`` callbacks fire with
        :class:`ClosedError`, blocking calls on other threads raise it, and the
        library threads are joined. Nothing is cancelled on the server. Safe to call
        twice; must not be called from an ``on_done`` callback."""
        self._core.close()
        self._finalizer.detach()

    @property
    def closed(self) -> bool:
        return self._core.closing

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- requests --------------------------------------------------------------

    def request_json(self, prompt: str, *, validate: bool = True, **request: Any) -> Dict[str, Any]:
        """The JSON body a submit would POST for these arguments (nothing is sent).
        With ``validate`` the cross-field checks run first (InvalidArgumentError)."""
        with _Request(prompt, **request) as req:
            if validate:
                _raise(N.apixo_request_validate(req.ptr))
            out = c_char_p()
            _raise(N.apixo_request_to_json(req.ptr, byref(out)))
            text = N.take_string(out) or "{}"
        return json.loads(text)

    # -- blocking calls --------------------------------------------------------

    def submit(self, prompt: str, *, on_done: Optional[OnDone] = None,
               **request: Any) -> Optional[str]:
        """Create a task.

        Without ``on_done``: blocks until the API answered and returns the task id.
        With ``on_done``: returns ``None`` at once; the submit happens in the
        background and ``on_done(task, error)`` is called exactly once, on the
        client's dispatcher thread, when the task ends (``task`` is ``None`` if the
        submit itself failed). Request keywords: model, max_images, resolution,
        aspect_ratio, mode, image_urls, sequential, web_search, output_format,
        provider, callback_url, prompt_optimize_mode, tag, extra.
        """
        if on_done is not None:
            self._submit_async(prompt, on_done, request)
            return None
        with _Request(prompt, **request) as req:
            out = c_char_p()
            _raise(N.apixo_submit(self._core.h(), req.ptr, byref(out)))
            return N.take_string(out)

    def status(self, task_id: str, *, model: Optional[str] = None) -> Task:
        """One status query; returns the snapshot in whatever state it is."""
        out = N.apixo_task_p()
        _raise(N.apixo_get_status(self._core.h(), _b(model), _b(task_id), byref(out)))
        task = _take_task(out, self._core)
        assert task is not None
        return task

    def wait(self, task_id: str, *, model: Optional[str] = None,
             timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT) -> Task:
        """Block until the task is terminal and return it.

        ``timeout`` in seconds (``None``: no deadline, ``0``: one status check).
        Raises :class:`TaskFailedError` (with ``.task``, ``.fail_code``) if it failed,
        :class:`TimeoutError` (``.task`` = last snapshot or ``None``) at the deadline.
        The GIL is released while waiting.
        """
        out = N.apixo_task_p()
        code = N.apixo_wait(self._core.h(), _b(model), _b(task_id), _ms(timeout), byref(out))
        return self._finish(code, out)

    def generate(self, prompt: str, *, timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT,
                 **request: Any) -> Task:
        """Submit and wait, with one overall deadline; returns the successful task.
        Raises like :meth:`submit` and :meth:`wait`."""
        with _Request(prompt, **request) as req:
            out = N.apixo_task_p()
            code = N.apixo_generate(self._core.h(), req.ptr, _ms(timeout), byref(out))
            return self._finish(code, out)

    def _finish(self, code: int, out: Any) -> Task:
        message = N.last_error() if code != N.APIXO_OK else ""
        task = _take_task(out, self._core)
        if code != N.APIXO_OK:
            raise error_for_code(code, message, task)
        assert task is not None
        return task

    def download(self, url: str, path: PathLike) -> str:
        """Download ``url`` to ``path`` (temp file + rename); returns the path."""
        _raise(N.apixo_download(self._core.h(), _b(url), _path(path)))
        return os.fspath(path)

    # -- callbacks -------------------------------------------------------------

    def _submit_async(self, prompt: str, on_done: OnDone, request: Dict[str, Any]) -> None:
        core = self._core
        with _Request(prompt, **request) as req:
            token = core.register(on_done)
            try:
                _raise(N.apixo_submit_async(core.h(), req.ptr, core._trampoline, token))
            except BaseException:
                core.unregister(token)  # the callback will not fire
                raise

    def watch(self, task_id: str, on_done: OnDone, *, model: Optional[str] = None) -> None:
        """Track an existing task; ``on_done(task, error)`` fires once when it ends."""
        core = self._core
        token = core.register(on_done)
        try:
            _raise(N.apixo_watch(core.h(), _b(model), _b(task_id), core._trampoline, token))
        except BaseException:
            core.unregister(token)
            raise

    def cancel(self, task_id: str) -> None:
        """Stop tracking a task: its ``on_done`` gets :class:`CancelledError`. Nothing
        is cancelled on the server. :class:`NotFoundError` if it is not tracked."""
        _raise(N.apixo_cancel(self._core.h(), _b(task_id)))

    def drain(self, timeout: Optional[float] = None) -> None:
        """Block until every ``on_done`` registered so far has fired
        (:class:`TimeoutError` at the deadline). Not from inside a callback."""
        _raise(N.apixo_drain(self._core.h(), _ms(timeout)))

    def resume(self, on_done: OnDone) -> None:
        """Re-track every task of the journal whose callback was not delivered;
        ``on_done(task, error)`` fires exactly once for each (submits that never left
        the local queue are sent now). A task whose submit was sent but whose answer
        was lost arrives with :class:`IndeterminateError`, ``task.id == ""`` and
        ``task.tag`` set: it was NOT resubmitted (see the README). Needs a client
        created with ``journal=`` (else :class:`InvalidArgumentError`)."""
        core = self._core
        token = core.register(on_done, once=False)  # fires once per journalled task
        try:
            _raise(N.apixo_resume(core.h(), core._trampoline, token))
        except BaseException:
            core.unregister(token)
            raise

    # -- webhooks --------------------------------------------------------------

    def handle_webhook(self, body: Union[bytes, bytearray, memoryview, str]) -> Task:
        """Hand the raw body of a webhook POST to the client. A tracked task is
        completed once (its ``on_done`` fires, waits return); repeats are recognised
        and ignored. Returns the delivered snapshot. Raises :class:`NotFoundError`
        (with ``.task``) for a task this client does not track and
        :class:`ProtocolError` for a malformed body. Thread-safe."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        out = N.apixo_task_p()
        code = N.apixo_webhook_ingest(self._core.h(), data, len(data), byref(out))
        return self._finish(code, out)

    # -- asyncio -----------------------------------------------------------------

    async def agenerate(self, prompt: str, *, timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT,
                        **request: Any) -> Task:
        """``generate`` for asyncio: no thread per task. The submit and the tracking
        run on the client's engine; the result comes back through
        ``loop.call_soon_threadsafe``."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._submit_async(prompt, _resolver(loop, fut), request)
        return await _await(fut, timeout)

    async def awatch(self, task_id: str, *, model: Optional[str] = None,
                     timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT) -> Task:
        """``wait`` for asyncio (through ``watch``)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self.watch(task_id, _resolver(loop, fut), model=model)
        return await _await(fut, timeout)

    def __repr__(self) -> str:
        return f"<apixo.Client {'closed' if self.closed else 'open'}>"


def _resolver(loop: asyncio.AbstractEventLoop, fut: "asyncio.Future[Task]") -> OnDone:
    def on_done(task: Optional[Task], error: Optional[Error]) -> None:
        def settle() -> None:
            if fut.done():  # cancelled or timed out meanwhile
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(task)  # type: ignore[arg-type]

        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    return on_done


async def _await(fut: "asyncio.Future[Task]", timeout: Optional[float]) -> Task:
    if timeout is None:
        return await fut
    try:
        return await asyncio.wait_for(fut, timeout)
    except Error:
        raise  # the task's own error (apixo.TimeoutError is also a builtins.TimeoutError)
    except asyncio.TimeoutError:
        if fut.done() and not fut.cancelled():
            return fut.result()
        raise TimeoutError(f"no result within {timeout} s (the task is still tracked)") from None
