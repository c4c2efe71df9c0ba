"""The Pythonic layer over :mod:`apixo._native`: ``Client``, ``Task`` and ``Stats``.

Blocking calls never sit in one long C call on the main thread, so that Ctrl-C works:
waits for a task run as short slices of ``apixo_wait`` (the task stays tracked between
slices by a callback registration, so slicing sends no extra request), and the calls
that are one request or a queue wait (submit, status, drain, downloads) run on a helper
thread while the caller waits interruptibly (see :func:`_interruptible`).
"""

from __future__ import annotations

import ctypes
import os
import time
from ctypes import byref, c_char_p, c_int64, c_size_t

from . import _log
from . import _native as N
from ._errors import ClosedError, Error, TimeoutError, error_for_code

# typing, logging, threading, weakref, json, asyncio and datetime cost start-up time
# (`import apixo` stays under 20 ms, see BENCHMARKS.md): they are imported where first used
TYPE_CHECKING = False
if TYPE_CHECKING:
    import asyncio
    import concurrent.futures
    import datetime
    import logging
    from typing import (
        Any,
        Callable,
        Dict,
        Iterable,
        Iterator,
        List,
        Mapping,
        Optional,
        Tuple,
        TypeVar,
        Union,
        overload,
    )

    from ._types import (
        AspectRatio,
        Mode,
        OutputFormat,
        PromptOptimizeMode,
        Provider,
        Resolution,
        Sequential,
        State,
    )

    _T = TypeVar("_T")
    _F = TypeVar("_F", bound=Callable[..., Any])

    #: ``on_done(task, error)``: ``task`` is a :class:`Task` or ``None`` (nothing at all
    #: is known); ``error`` is ``None`` on success, else the :class:`apixo.Error` that
    #: ended the task (``TaskFailedError``, ``CancelledError``, ``ClosedError``...).
    OnDone = Callable[[Optional["Task"], Optional[Error]], object]

    #: ``on_update(task)``: called on the waiting thread (or event loop) with the snapshot
    #: each time the state of the task is seen to change (``pending``, ``processing``,
    #: then the terminal state), the first snapshot included.
    OnUpdate = Callable[["Task"], object]

    PathLike = Union[str, "os.PathLike[str]"]
else:
    def overload(fn):  # the runtime needs only the implementation
        return fn

    def __getattr__(name):  # OnDone and OnUpdate for the curious at run time
        if name in ("OnDone", "OnUpdate"):
            from typing import Callable, Optional

            return (Callable[[Optional[Task], Optional[Error]], object] if name == "OnDone"
                    else Callable[[Task], object])
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Client", "AsyncClient", "Task", "Stats", "OnDone", "OnUpdate", "library_version"]

_STATES: Dict[int, State] = {
    N.APIXO_STATE_PENDING: "pending", N.APIXO_STATE_PROCESSING: "processing",
    N.APIXO_STATE_SUCCESS: "success", N.APIXO_STATE_FAILED: "failed"}

_LOG_LEVELS = {N.APIXO_LOG_DEBUG: 10, N.APIXO_LOG_INFO: 20,  # logging.DEBUG ... ERROR
               N.APIXO_LOG_WARN: 30, N.APIXO_LOG_ERROR: 40}

#: The default deadline of generate/wait/agenerate/awatch, in seconds: every wait is
#: bounded unless the caller explicitly asks for none (``timeout=None``).
DEFAULT_WAIT_TIMEOUT = 600.0

#: The longest a blocking call stays inside one C call on the caller's thread (seconds):
#: the bound on how late Ctrl-C is noticed.
_SLICE = 0.2

#: The helper threads of a client for the blocking calls of its coroutines (submits,
#: status queries, downloads): a fixed number, whatever the number of tasks. One submit
#: takes one request, so two threads keep up with any request budget.
_POOL_SIZE = 2


def library_version() -> str:
    """The version of the loaded libapixo (``apixo_version()``), e.g. ``"0.1.0"``."""
    raw: bytes = N.apixo_version()
    return raw.decode()


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


def _deadline(timeout: Optional[float]) -> Optional[float]:
    if timeout is None:
        return None
    if timeout < 0:
        raise ValueError("timeout must be >= 0 or None")
    return time.monotonic() + timeout


def _s(raw: Optional[bytes]) -> Optional[str]:
    return None if raw is None else raw.decode("utf-8", "replace")


def _raise(code: int, task: Optional[Task] = None) -> None:
    """Raise the exception for a failed call, with this thread's apixo_last_error()."""
    if code != N.APIXO_OK:
        raise error_for_code(code, N.last_error(), task)


def _note(exc: BaseException, text: str, task_id: Optional[str]) -> None:
    """Tell the caller what an interrupted call leaves behind: ``exc.apixo_task_id`` and,
    on Python 3.11+, a note printed with the traceback."""
    try:
        setattr(exc, "apixo_task_id", task_id)
        add_note = getattr(exc, "add_note", None)
        if add_note is not None:
            add_note(text)
    except Exception:  # noqa: BLE001 - an exception type without a __dict__
        pass


def _interruptible(call: Callable[[], _T], what: str,
                   late: Optional[Callable[[_T], None]] = None) -> _T:
    """Runs ``call`` (one blocking C call that raises its own apixo errors) so that the
    main thread notices Ctrl-C within a fraction of a second.

    On the main thread the call runs on a helper thread and the caller waits in short,
    interruptible slices; an interrupt leaves the helper to finish on its own (the call is
    bounded: one request or a queue wait, both woken by ``close``) and hands its result,
    if any, to ``late``. Other threads never receive KeyboardInterrupt: they call
    directly."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return call()
    result: List[Tuple[bool, Any]] = []  # (True, value) or (False, exception)
    lock = threading.Lock()
    abandoned = [False]
    done = threading.Event()

    def run() -> None:
        try:
            outcome: Tuple[bool, Any] = (True, call())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome = (False, exc)
        with lock:
            result.append(outcome)
            orphan = abandoned[0]
        done.set()
        if orphan and late is not None and outcome[0]:
            try:
                late(value_of(outcome))
            except Exception:  # noqa: BLE001
                _log.logger().exception("apixo: handling the late result of an interrupted %s",
                                        what)

    def value_of(outcome: Tuple[bool, Any]) -> _T:
        got: _T = outcome[1]
        return got

    worker = threading.Thread(target=run, name=f"apixo-{what}", daemon=True)
    worker.start()
    try:
        while not done.wait(_SLICE):
            pass
    except BaseException:
        with lock:
            abandoned[0] = not result
            finished = bool(result)
        if finished and late is not None and result[0][0]:
            late(value_of(result[0]))  # it ended just as the interrupt came: report it all the same
        raise
    if result[0][0]:
        return value_of(result[0])
    error: BaseException = result[0][1]
    raise error


# ---------------------------------------------------------------------------
# Task
# ---------------------------------------------------------------------------

_FIELDS = ("id", "model", "state", "urls", "fail_code", "fail_message", "create_time_ms",
           "complete_time_ms", "cost_time_ms", "tag", "raw")


class Task:
    """An immutable snapshot of one task, copied out of the C snapshot.

    Attributes: ``id`` (``""`` when unknown: a journal intent whose submit answer was
    lost), ``model`` (``None`` when unknown), ``state`` (``"pending"``, ``"processing"``,
    ``"success"``, ``"failed"``), ``urls``, ``fail_code`` and ``fail_message`` (``None``
    unless failed), ``create_time_ms``, ``complete_time_ms``, ``cost_time_ms`` (0 when
    unknown), ``tag`` (the caller's tag or ``None``) and ``raw`` (the status ``data`` dict
    as received).

    Tasks compare equal when every attribute is equal, hash by value, and pickle (an
    unpickled task has no client: :meth:`save` then raises :class:`ClosedError`).
    """

    __slots__ = _FIELDS + ("_snapshot", "_core", "__weakref__")

    id: str
    model: Optional[str]
    state: State
    urls: Tuple[str, ...]
    fail_code: Optional[str]
    fail_message: Optional[str]
    create_time_ms: int
    complete_time_ms: int
    cost_time_ms: int
    tag: Optional[str]
    raw: Dict[str, Any]
    _snapshot: Any
    _core: Optional[_Core]

    def __init__(self) -> None:
        """Not for direct use: tasks come from :class:`Client` calls."""
        raise TypeError("Task objects are created by apixo.Client")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Task is immutable")

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_unpickle_task, (self.to_dict(),))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.id, self.model, self.state, self.urls, self.fail_code,
                     self.complete_time_ms, self.tag))

    # convenience views -------------------------------------------------------

    @property
    def done(self) -> bool:
        """True when the state is terminal (success or failed)."""
        return self.state in ("success", "failed")

    @property
    def succeeded(self) -> bool:
        """True when the state is ``success``."""
        return self.state == "success"

    @property
    def failed(self) -> bool:
        """True when the state is ``failed`` (see ``fail_code``, ``fail_message``)."""
        return self.state == "failed"

    @property
    def created_at(self) -> Optional[datetime.datetime]:
        """createTime as an aware UTC datetime, or None when unknown."""
        return _when(self.create_time_ms)

    @property
    def completed_at(self) -> Optional[datetime.datetime]:
        """completeTime as an aware UTC datetime, or None until terminal."""
        return _when(self.complete_time_ms)

    @property
    def cost_time(self) -> float:
        """costTime in seconds (0.0 until terminal)."""
        return self.cost_time_ms / 1000.0

    def _download_core(self) -> _Core:
        core = self._core
        if core is None or self._snapshot is None:
            raise ClosedError("this task has no client to download with (it was unpickled); "
                              "use client.download(url, path) for each of task.urls")
        return core

    def save(self, directory: PathLike) -> List[str]:
        """Download every result into ``directory`` (created if missing) as
        ``<taskId>-<n>.<ext>``; returns the paths. Blocks (Ctrl-C interrupts it); needs
        the client that produced this task to be open (else :class:`ClosedError`)."""
        core = self._download_core()
        return _interruptible(lambda: core.download_results(self._snapshot, directory),
                              "download")

    async def asave(self, directory: PathLike) -> List[str]:
        """:meth:`save` for asyncio: the download runs on the client's small pool of
        helper threads (at most 2), never on the event loop."""
        core = self._download_core()
        return await core.in_pool(lambda: core.download_results(self._snapshot, directory))

    def to_dict(self) -> Dict[str, Any]:
        """Every attribute in a dict (``urls`` as a tuple, ``raw`` as received)."""
        return {name: getattr(self, name) for name in _FIELDS}

    def __repr__(self) -> str:
        extra = f" fail_code={self.fail_code!r}" if self.fail_code else ""
        tag = f" tag={self.tag!r}" if self.tag else ""
        return (f"<apixo.Task {self.id or '(no id)'} {self.model} {self.state} "
                f"urls={len(self.urls)}{extra}{tag}>")


def _task_from_native(ptr: Any, core: Optional[_Core], owned: bool) -> Task:
    """Copy everything out of a C snapshot. ``owned``: ptr belongs to us (it is
    kept for :meth:`save` and freed with this object); otherwise it is borrowed
    (a callback's) and a copy is kept instead."""
    import json

    if not owned:
        ptr = N.apixo_task_copy(ptr)
        if not ptr:
            raise error_for_code(N.APIXO_ERR_NO_MEMORY, "apixo_task_copy failed")
    try:
        state = N.apixo_task_state(ptr)
        urls: List[str] = []
        for i in range(N.apixo_task_result_count(ptr)):
            url = _s(N.apixo_task_result_url(ptr, i))
            if url is not None:
                urls.append(url)
        text = _s(N.apixo_task_json(ptr)) or "{}"
        try:
            raw = json.loads(text)
        except ValueError:
            raw = {}
        self = _task_build({
            "id": _s(N.apixo_task_id(ptr)) or "",
            "model": _s(N.apixo_task_model(ptr)),
            "state": _STATES.get(state) or _s(N.apixo_state_name(state)) or "pending",
            "urls": tuple(urls),
            "fail_code": _s(N.apixo_task_fail_code(ptr)),
            "fail_message": _s(N.apixo_task_fail_message(ptr)),
            "create_time_ms": int(N.apixo_task_create_time_ms(ptr)),
            "complete_time_ms": int(N.apixo_task_complete_time_ms(ptr)),
            "cost_time_ms": int(N.apixo_task_cost_time_ms(ptr)),
            "tag": _s(N.apixo_task_tag(ptr)),
            "raw": raw if isinstance(raw, dict) else {},
        }, ptr, core)
    except BaseException:
        N.apixo_task_free(ptr)
        raise
    import weakref

    weakref.finalize(self, N.apixo_task_free, ptr)
    return self


def _task_build(fields: Mapping[str, Any], snapshot: Any, core: Optional[_Core]) -> Task:
    self = object.__new__(Task)
    for name in _FIELDS:
        object.__setattr__(self, name, fields[name])
    object.__setattr__(self, "_snapshot", snapshot)
    object.__setattr__(self, "_core", core)
    return self


def _unpickle_task(fields: Dict[str, Any]) -> Task:
    return _task_build(fields, None, None)


def _when(ms: int) -> Optional[datetime.datetime]:
    import datetime

    if not ms:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000.0, tz=datetime.timezone.utc)


def _take_task(ptr: Any, core: Optional[_Core]) -> Optional[Task]:
    """An owned out-parameter snapshot (possibly NULL) into a Task."""
    if not ptr:
        return None
    return _task_from_native(ptr, core, owned=True)


class Stats:
    """What the client's budget looks like right now (:meth:`Client.stats`); compares
    equal to another with the same counts and unpacks like a tuple."""

    __slots__ = ("queued", "in_flight", "tracked", "requests_in_window", "pending_callbacks")

    def __init__(self, queued: int, in_flight: int, tracked: int, requests_in_window: int,
                 pending_callbacks: int) -> None:
        """``queued``: submits waiting in the local queue for a concurrency slot or a
        request token; ``in_flight``: concurrency slots taken (tasks running on the server,
        or assumed to be); ``tracked``: tasks being polled, parked or waited for;
        ``requests_in_window``: requests sent in the current rate window (of
        ``requests_per_minute``); ``pending_callbacks``: ``on_done`` callbacks registered
        and not yet fired."""
        self.queued = queued
        self.in_flight = in_flight
        self.tracked = tracked
        self.requests_in_window = requests_in_window
        self.pending_callbacks = pending_callbacks

    def _values(self) -> Tuple[int, int, int, int, int]:
        return (self.queued, self.in_flight, self.tracked, self.requests_in_window,
                self.pending_callbacks)

    def __iter__(self) -> Iterator[int]:
        return iter(self._values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stats):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return ("Stats(queued={}, in_flight={}, tracked={}, requests_in_window={}, "
                "pending_callbacks={})".format(*self._values()))


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

_REQUEST_KEYS = ("model", "max_images", "resolution", "aspect_ratio", "mode", "image_urls",
                 "sequential", "web_search", "output_format", "provider", "callback_url",
                 "prompt_optimize_mode", "tag", "extra")

_REQUEST_DOC = """
        Request keywords (validated at once; ``None`` leaves a field out):
        ``model`` (default ``"seedream-5-0"``; any APIXO model by name),
        ``max_images`` (1 to 10; Seedream requires it), ``resolution`` (``"2K"``,
        ``"3K"``, ``"4K"`` or ``(width, height)``), ``aspect_ratio`` (``"16:9"``...),
        ``mode`` (``"text-to-image"``, ``"image-to-image"``), ``image_urls`` (a list of
        http(s) URLs), ``sequential`` (``"disabled"``, ``"auto"`` or a bool),
        ``web_search``, ``output_format`` (``"jpeg"``, ``"png"``), ``provider``
        (``"auto"``, ``"value"``, ``"official"``), ``callback_url`` (a webhook receiver),
        ``prompt_optimize_mode`` (``"standard"``), ``tag`` (your own id: kept locally and
        in the journal, never sent) and ``extra`` (any other input field, sent as JSON)."""


def _doc(fn: _F) -> _F:
    fn.__doc__ = (fn.__doc__ or "").rstrip() + "\n" + _REQUEST_DOC + "\n"
    return fn


def _fields(scope: Mapping[str, Any]) -> Dict[str, Any]:
    """The request keywords of a method, picked from its locals()."""
    return {key: scope[key] for key in _REQUEST_KEYS}


class _Request:
    """Owns one apixo_request built from the request keywords."""

    def __init__(self, prompt: str, fields: Mapping[str, Any]) -> None:
        model = fields.get("model")
        self.model: str = model or "seedream-5-0"
        self.tag: Optional[str] = fields.get("tag")
        self.ptr = N.apixo_request_new(_b(model))
        if not self.ptr:
            msg = N.last_error() or f"cannot create a request for model {model!r}"
            raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, msg)
        try:
            self._fill(prompt, fields)
        except BaseException:
            self.close()
            raise

    def _fill(self, prompt: str, f: Mapping[str, Any]) -> None:
        import json

        p = self.ptr
        image_urls = f.get("image_urls")
        if isinstance(image_urls, (str, bytes)):
            raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT,
                                 "image_urls: expected a list of URLs, not one string")
        sequential = f.get("sequential")
        if sequential is True:
            sequential = "auto"
        elif sequential is False:
            sequential = "disabled"
        resolution: Any = f.get("resolution")
        if isinstance(resolution, tuple):
            size: List[object] = [*resolution]
            if len(size) != 2 or not all(isinstance(v, int) for v in size):
                raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT,
                                     "resolution: expected (width, height) in pixels")
            resolution = f"{size[0]}x{size[1]}"
        # mode before image_urls and prompt: setters validate against the mode
        if f.get("mode") is not None:
            _raise(N.apixo_request_set_mode(p, _b(f["mode"])))
        _raise(N.apixo_request_set_prompt(p, _b(prompt)))
        if f.get("max_images") is not None:
            _raise(N.apixo_request_set_max_images(p, _int(f["max_images"], "max_images")))
        if resolution is not None:
            _raise(N.apixo_request_set_resolution(p, _b(resolution)))
        if f.get("aspect_ratio") is not None:
            _raise(N.apixo_request_set_aspect_ratio(p, _b(f["aspect_ratio"])))
        for url in image_urls or ():
            _raise(N.apixo_request_add_image_url(p, _b(url)))
        if sequential is not None:
            _raise(N.apixo_request_set_sequential(p, _b(sequential)))
        if f.get("web_search") is not None:
            _raise(N.apixo_request_set_web_search(p, 1 if f["web_search"] else 0))
        for key, setter in (("output_format", N.apixo_request_set_output_format),
                            ("provider", N.apixo_request_set_provider),
                            ("callback_url", N.apixo_request_set_callback_url),
                            ("prompt_optimize_mode", N.apixo_request_set_prompt_optimize_mode),
                            ("tag", N.apixo_request_set_tag)):
            if f.get(key) is not None:
                _raise(setter(p, _b(f[key])))
        extra: Mapping[str, Any] = f.get("extra") or {}
        for key, value in extra.items():
            try:
                text = json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT,
                                     f"extra[{key!r}]: not JSON-serialisable: {exc}") from None
            _raise(N.apixo_request_set_input_json(p, _b(key), _b(text)))

    def close(self) -> None:
        ptr, self.ptr = self.ptr, None
        if ptr:
            N.apixo_request_free(ptr)

    def __enter__(self) -> _Request:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, f"{name}: expected an integer")
    if not -2**31 <= value < 2**31:
        raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, f"{name}: out of range")
    checked: int = value
    return checked


# ---------------------------------------------------------------------------
# The native client and its callbacks
# ---------------------------------------------------------------------------


class _Pending:
    __slots__ = ("fn", "once", "task_id")

    def __init__(self, fn: OnDone, once: bool, task_id: Optional[str]) -> None:
        self.fn = fn
        self.once = once
        self.task_id = task_id  # a watch of the user's (tracked: an interrupted wait keeps it)


def _ignore(task: Optional[Task], error: Optional[Error]) -> None:
    """The callback of the registration that keeps a waited-for task tracked."""


class _Core:
    """Owns the apixo_client handle and every object the C side may call back into.

    It is separate from :class:`Client` so that a finalizer can close the handle
    without keeping the Client alive, and so that tasks can download after the
    Client object itself is gone (as long as it is not closed)."""

    def __init__(self, opts: Any, log_fn: Any) -> None:
        import threading

        self._lock = threading.Lock()
        self._pending: Dict[int, _Pending] = {}
        self._next_token = 1
        self._lib_threads: set[int] = set()
        self._log_fn = log_fn  # the C logger pointer must outlive the handle
        # one trampoline for every task callback of this client, alive until the handle
        # is freed (apixo_client_free fires every pending callback before returning)
        self.trampoline = N.apixo_task_callback(self._on_native_done)
        self._pool: Optional[concurrent.futures.ThreadPoolExecutor] = None
        self.closing = False
        self.pid = os.getpid()
        self.loop: Optional[asyncio.AbstractEventLoop] = None  # AsyncClient: the reader's loop
        self.fd = -1
        handle = N.apixo_client_p()
        _raise(N.apixo_client_new(opts, byref(handle)))
        self.handle: Any = handle

    # -- handle access -------------------------------------------------------

    def check_process(self) -> None:
        if self.pid != os.getpid():
            raise ClosedError(f"client created in another process (pid {self.pid}); "
                              "create one after fork")

    def h(self) -> Any:
        self.check_process()
        handle = self.handle
        if self.closing or handle is None:
            raise ClosedError("the client is closed")
        return handle

    def close(self, from_finalizer: bool = False) -> None:
        import threading

        if self.pid != os.getpid():
            # a forked child: the library's threads exist only in the parent, and its locks
            # may have been held at the fork; freeing the inherited handle would act on
            # that copied state, so it is left alone (the child's exit reclaims it)
            self.closing = True
            return
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
            pool, self._pool = self._pool, None
        self.unbind_loop()
        if pool is not None:
            pool.shutdown(wait=False)
        if handle is not None:
            # pending callbacks fire with APIXO_ERR_CLOSED while this call blocks
            # (without the GIL, so they can run); blocking calls on other threads return
            N.apixo_client_free(handle)
        self.handle = None
        with self._lock:
            self._pending.clear()

    # -- helper threads for asyncio ---------------------------------------------

    # -- the queue delivery mode (AsyncClient) ----------------------------------

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Lets ``loop`` run this client's completions and log lines: a reader on the
        client's event descriptor that calls ``apixo_dispatch`` (queue mode only)."""
        if self.loop is loop:
            return
        self.unbind_loop()
        fd = ctypes.c_int(-1)
        _raise(N.apixo_client_event_fd(self.h(), byref(fd)))
        self.fd = fd.value
        loop.add_reader(self.fd, self.dispatch_ready)
        self.loop = loop
        _log.logger().debug("completions of this client now run on %r", loop)

    def unbind_loop(self) -> None:
        loop, self.loop = self.loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self.fd)

    def dispatch_ready(self) -> None:
        """The reader: runs the waiting events (at most 64 a turn: the descriptor stays
        readable, so the loop comes back for the rest after its other work)."""
        handle = self.handle
        if handle is None or self.closing:
            self.unbind_loop()
            return
        code = N.apixo_dispatch(handle, 64, 0, None)
        if code != N.APIXO_OK:
            _log.logger().warning("apixo: dispatching events: %s", N.last_error())

    async def in_pool(self, call: Callable[[], _T], never_ran: Optional[Callable[[], None]] = None,
                      late: Optional[Callable[[_T], None]] = None) -> _T:
        """Runs one bounded blocking call on the client's pool (at most _POOL_SIZE threads,
        shared by every coroutine), so the event loop never blocks in C. If the coroutine is
        cancelled, ``never_ran`` is called when the call had not started (it never will),
        and ``late`` gets the result of a call that was already running."""
        import asyncio
        import concurrent.futures

        self.check_process()
        with self._lock:
            if self.closing:
                raise ClosedError("the client is closed")
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(_POOL_SIZE, "apixo-pool")
            pool = self._pool
        job = pool.submit(call)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            def settle(f: concurrent.futures.Future[_T]) -> None:
                if f.cancelled():
                    if never_ran is not None:
                        never_ran()
                elif late is not None and f.exception() is None:
                    late(f.result())

            job.add_done_callback(settle)
            raise

    # -- callbacks -----------------------------------------------------------

    def register(self, fn: OnDone, once: bool = True, task_id: Optional[str] = None) -> int:
        if not callable(fn):
            raise TypeError("on_done must be callable")
        self.check_process()  # before the lock: one held at a fork stays held in the child
        with self._lock:
            token = self._next_token
            self._next_token += 1
            self._pending[token] = _Pending(fn, once, task_id)
        return token

    def unregister(self, token: int) -> None:
        with self._lock:
            self._pending.pop(token, None)

    def user_watches(self, task_id: str) -> bool:
        """Whether a watch of the user's is pending for task_id."""
        with self._lock:
            return any(p.task_id == task_id for p in self._pending.values())

    def stop_tracking(self, task_id: str, token: int) -> None:
        """Ends the registration that kept task_id tracked for a wait that is over
        (deadline, Ctrl-C, cancelled coroutine): ``apixo_cancel`` unless a watch of the
        user's needs the task tracked anyway (that one would be cancelled too)."""
        with self._lock:
            entry = self._pending.get(token)
            if entry is None:
                return  # it fired: the task ended or tracking stopped on its own
            entry.fn = _ignore
        if self.closing or self.user_watches(task_id) or self.pid != os.getpid():
            return
        code = N.apixo_cancel(self.handle, _b(task_id))
        if code not in (N.APIXO_OK, N.APIXO_ERR_NOT_FOUND, N.APIXO_ERR_CLOSED):
            _log.logger().warning("apixo: stopping the tracking of %s: %s", task_id, N.last_error())
        _log.logger().debug("stopped tracking task %s", task_id)

    def _on_native_done(self, code: int, task_ptr: Any, user_data: Optional[int]) -> None:
        # Runs on the client's dispatcher thread. Nothing may escape: an exception here
        # would only be printed by ctypes, and the C side must never see one.
        import threading

        try:
            self._lib_threads.add(threading.get_ident())
            with self._lock:
                entry = self._pending.get(user_data or 0)
                if entry is not None and entry.once:
                    del self._pending[user_data or 0]
            if entry is None:
                _log.logger().warning("apixo: callback for an unknown registration (%s, %s)",
                                      user_data, _code_name(code))
                return
            # the library sets this thread's last error to the outcome's message for the call
            message = N.last_error() if code != N.APIXO_OK else ""
            task = _task_from_native(task_ptr, self, owned=False) if task_ptr else None
            error = None if code == N.APIXO_OK else _callback_error(code, task, message)
            entry.fn(task, error)
        except BaseException:  # noqa: BLE001 - user code must never crash the process
            try:
                _log.logger().exception("apixo: exception in on_done callback (ignored)")
            except BaseException:  # pragma: no cover
                pass

    # -- operations that need the core (tasks use them too) -------------------

    def download_results(self, snapshot: Any, directory: PathLike) -> List[str]:
        paths = ctypes.POINTER(c_char_p)()
        count = c_size_t(0)
        started = time.monotonic()
        _raise(N.apixo_download_results(self.h(), snapshot, _path(directory), byref(paths),
                                        byref(count)))
        try:
            got = [os.fsdecode(paths[i]) for i in range(count.value)]
        finally:
            N.apixo_free_paths(paths, count.value)
        _log.logger().debug("downloaded %d result(s) into %s in %.0f ms", len(got),
                            os.fspath(directory), (time.monotonic() - started) * 1000)
        return got


def _code_name(code: int) -> str:
    return _s(N.apixo_code_name(code)) or str(code)


def _callback_error(code: int, task: Optional[Task], message: str) -> Error:
    """The exception handed to on_done, with the library's message for the outcome."""
    if task is None:
        return error_for_code(code, message or _code_name(code))
    ident = task.id or f"(no id, tag {task.tag!r})"
    submitted = None if code == N.APIXO_ERR_INDETERMINATE else bool(task.id)
    return error_for_code(code, f"task {ident}: {message or _code_name(code)}", task,
                          submitted=submitted)


def _make_logger(logger: logging.Logger) -> Tuple[Any, int]:
    import logging

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


def _millis(seconds: Any, name: str, *, allow_zero: bool) -> int:
    """Seconds (int or float) as whole milliseconds for a C long option."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, f"{name}: expected seconds")
    if not (seconds >= 0 if allow_zero else seconds > 0) or seconds > 2**53 / 1000:
        raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, f"{name}: out of range")
    return max(0 if allow_zero else 1, int(round(seconds * 1000)))


# ---------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------


class Client:
    """A client of the APIXO task API (one libapixo ``apixo_client``).

    Args:
        api_key: the API key; ``None``: ``APIXO_API_KEY``.
        base_url: ``None``: ``APIXO_BASE_URL``, then ``https://api.apixo.ai/api/v1``.
        timeout: seconds per HTTP request (each call has its own overall ``timeout=``).
        max_retries: retries of GETs and of submits the server certainly did not take.
        requests_per_minute: the account's request budget (``0``: no limit).
        max_concurrent_tasks: the account's task cap (``0``: none); submits past it wait
            in a local queue.
        time_scale: multiplies the library's built-in timings (``1.0`` in production).
        ca_file: a PEM bundle for TLS instead of the system store.
        journal: a file that makes tasks survive a crash of the host.
        max_download_bytes: the largest downloaded file (default 64 MiB).
        shared_budget: a Redis URL (``redis://[:password@]host[:port][/db]`` or
            ``unix:///path``) whose budget every client of the account shares, in any
            process or machine (``None``: ``APIXO_SHARED_BUDGET``, else a local budget).
        shared_budget_namespace: the key prefix in Redis (``None``: derived from a hash
            of the API key).
        max_retry_after: seconds (default 300): a server's Retry-After past it ends the
            call at once instead of being waited out.
        download_timeout: seconds (default 600): the bound of one download attempt,
            connect to last byte.
        logger: receives the library's log lines (default ``logging.getLogger("apixo")``
            at its effective level when the client is created; ``False``: none).

    Every method is thread-safe; blocking methods release the GIL and are interrupted
    by Ctrl-C. ``on_done`` callbacks and the logger run on the client's dispatcher
    thread (see :class:`AsyncClient` for the event loop instead). A client belongs to the process that created it: in a forked child every
    call raises :class:`ClosedError` (create a new client there). Use it as a context
    manager (``with`` or ``async with``) or call :meth:`close` (safe twice).
    """

    _DELIVERY = N.APIXO_DELIVERY_THREAD

    def __init__(self, api_key: Optional[str] = None, base_url: Optional[str] = None, *,
                 timeout: float = 30.0,
                 max_retries: int = 3,
                 requests_per_minute: int = 60,
                 max_concurrent_tasks: int = 10,
                 time_scale: float = 1.0,
                 ca_file: Optional[PathLike] = None,
                 journal: Optional[PathLike] = None,
                 max_download_bytes: Optional[int] = None,
                 shared_budget: Optional[str] = None,
                 shared_budget_namespace: Optional[str] = None,
                 max_retry_after: Optional[float] = None,
                 download_timeout: Optional[float] = None,
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
            if timeout is None or timeout <= 0:  # pyright: ignore[reportUnnecessaryComparison]
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
                _raise(N.apixo_options_set_max_download_bytes(
                    opts, _int64(max_download_bytes, "max_download_bytes")))
            if shared_budget is not None or shared_budget_namespace is not None:
                _raise(N.apixo_options_set_shared_budget(
                    opts, None if shared_budget is None else _b(shared_budget),
                    None if shared_budget_namespace is None else _b(shared_budget_namespace)))
            if max_retry_after is not None:
                _raise(N.apixo_options_set_max_retry_after_ms(
                    opts, _millis(max_retry_after, "max_retry_after", allow_zero=True)))
            if download_timeout is not None:
                _raise(N.apixo_options_set_download_timeout_ms(
                    opts, _millis(download_timeout, "download_timeout", allow_zero=False)))
            if logger is not False:
                lg = _log.logger() if logger is None or logger is True else logger
                log_fn, min_level = _make_logger(lg)
                _raise(N.apixo_options_set_logger(opts, log_fn, min_level, None))
            _raise(N.apixo_options_set_delivery(opts, self._DELIVERY))
            self._core = _Core(opts, log_fn)
        finally:
            N.apixo_options_free(opts)  # the client copied it
        import weakref

        self._finalizer = weakref.finalize(self, self._core.close, True)

    # -- lifetime ------------------------------------------------------------

    def close(self) -> None:
        """Shut the client down: pending ``on_done`` callbacks fire with
        :class:`ClosedError`, blocking calls on other threads raise it, and the
        library threads are joined. Nothing is cancelled on the server. Safe to call
        twice; must not be called from an ``on_done`` callback."""
        self._core.close()
        self._finalizer.detach()

    async def aclose(self) -> None:
        """:meth:`close` for asyncio: the shutdown (which joins the library's threads)
        runs off the event loop, so pending ``agenerate`` calls see their
        :class:`ClosedError` delivered."""
        import asyncio

        self._core.unbind_loop()  # on the loop's own thread, before the descriptor goes
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop (an AsyncClient also has it run its completions)."""
        import asyncio

        return asyncio.get_running_loop()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has begun (or in a forked child)."""
        return self._core.closing or self._core.pid != os.getpid()

    def __enter__(self) -> Client:
        """``with Client() as client:`` closes it at the end of the block."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        """``async with Client() as client:`` closes it (:meth:`aclose`) at the end."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def stats(self) -> Stats:
        """The client's budget right now: submits queued locally, tasks in flight
        (concurrency slots taken), tasks tracked, requests in the current rate window and
        pending callbacks (``apixo_client_stats``)."""
        values = [c_int64(0) for _ in range(5)]
        _raise(N.apixo_client_stats(self._core.h(), *(byref(v) for v in values)))
        return Stats(*(int(v.value) for v in values))

    # -- requests --------------------------------------------------------------

    @_doc
    def request_json(self, prompt: str, *, validate: bool = True,
                     model: Optional[str] = None,
                     max_images: Optional[int] = None,
                     resolution: Optional[Resolution] = None,
                     aspect_ratio: Optional[AspectRatio] = None,
                     mode: Optional[Mode] = None,
                     image_urls: Optional[Iterable[str]] = None,
                     sequential: Optional[Sequential] = None,
                     web_search: Optional[bool] = None,
                     output_format: Optional[OutputFormat] = None,
                     provider: Optional[Provider] = None,
                     callback_url: Optional[str] = None,
                     prompt_optimize_mode: Optional[PromptOptimizeMode] = None,
                     tag: Optional[str] = None,
                     extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """The JSON body a submit would POST for these arguments (nothing is sent).
        With ``validate`` the cross-field checks run first (InvalidArgumentError)."""
        import json

        with _Request(prompt, _fields(locals())) as req:
            if validate:
                _raise(N.apixo_request_validate(req.ptr))
            out = c_char_p()
            _raise(N.apixo_request_to_json(req.ptr, byref(out)))
            text = N.take_string(out) or "{}"
        body: Dict[str, Any] = json.loads(text)
        return body

    # -- blocking calls --------------------------------------------------------

    @overload
    def submit(self, prompt: str, *, on_done: None = None,
               model: Optional[str] = None,
               max_images: Optional[int] = None,
               resolution: Optional[Resolution] = None,
               aspect_ratio: Optional[AspectRatio] = None,
               mode: Optional[Mode] = None,
               image_urls: Optional[Iterable[str]] = None,
               sequential: Optional[Sequential] = None,
               web_search: Optional[bool] = None,
               output_format: Optional[OutputFormat] = None,
               provider: Optional[Provider] = None,
               callback_url: Optional[str] = None,
               prompt_optimize_mode: Optional[PromptOptimizeMode] = None,
               tag: Optional[str] = None,
               extra: Optional[Mapping[str, Any]] = None) -> str: ...

    @overload
    def submit(self, prompt: str, *, on_done: OnDone,
               model: Optional[str] = None,
               max_images: Optional[int] = None,
               resolution: Optional[Resolution] = None,
               aspect_ratio: Optional[AspectRatio] = None,
               mode: Optional[Mode] = None,
               image_urls: Optional[Iterable[str]] = None,
               sequential: Optional[Sequential] = None,
               web_search: Optional[bool] = None,
               output_format: Optional[OutputFormat] = None,
               provider: Optional[Provider] = None,
               callback_url: Optional[str] = None,
               prompt_optimize_mode: Optional[PromptOptimizeMode] = None,
               tag: Optional[str] = None,
               extra: Optional[Mapping[str, Any]] = None) -> None: ...

    @_doc
    def submit(self, prompt: str, *, on_done: Optional[OnDone] = None,
               model: Optional[str] = None,
               max_images: Optional[int] = None,
               resolution: Optional[Resolution] = None,
               aspect_ratio: Optional[AspectRatio] = None,
               mode: Optional[Mode] = None,
               image_urls: Optional[Iterable[str]] = None,
               sequential: Optional[Sequential] = None,
               web_search: Optional[bool] = None,
               output_format: Optional[OutputFormat] = None,
               provider: Optional[Provider] = None,
               callback_url: Optional[str] = None,
               prompt_optimize_mode: Optional[PromptOptimizeMode] = None,
               tag: Optional[str] = None,
               extra: Optional[Mapping[str, Any]] = None) -> Optional[str]:
        """Create a task.

        Without ``on_done``: blocks until the API answered (waiting first in the local
        queue past the concurrency cap) and returns the task id. Ctrl-C interrupts the
        wait; a submit already under way then goes on, and if the API accepts it its id
        is logged (WARNING, logger ``apixo``).
        With ``on_done``: returns ``None`` at once; the submit happens in the
        background and ``on_done(task, error)`` is called exactly once, on the
        client's dispatcher thread, when the task ends.
        Errors carry ``submitted`` (``False``: no task was created; ``None`` for
        :class:`IndeterminateError`: it may exist)."""
        req = _Request(prompt, _fields(locals()))
        if on_done is not None:
            with req:
                self._submit_async(req, on_done)
            return None
        return self._submit_blocking(req, None, "submit")

    def _submit_blocking(self, req: _Request, deadline: Optional[float], what: str) -> str:
        """Runs the submit (owning ``req``, which it frees) interruptibly; returns the id."""
        core = self._core
        try:
            handle = core.h()
        except BaseException:
            req.close()
            raise
        model, tag = req.model, req.tag
        _log.logger().debug("queueing a submit: model %s%s", model, f", tag {tag}" if tag else "")

        call = _submit_call(handle, req, deadline)

        def late(task_id: str) -> None:
            _log.logger().warning("apixo: task %s was accepted after %s() was interrupted; it "
                                  "runs on the server: client.wait(%r) picks it up", task_id,
                                  what, task_id)

        try:
            return _interruptible(call, "submit", late)
        except (KeyboardInterrupt, SystemExit) as exc:
            _note(exc, f"apixo: {what}() was interrupted while its submit was queued or sent; "
                       "it goes on in the background, and if the API accepts it the task id "
                       "is logged (WARNING, logger 'apixo')", None)
            raise

    def status(self, task_id: str, *, model: Optional[str] = None) -> Task:
        """One status query (GET); returns the snapshot in whatever state it is.

        Args:
            task_id: the id ``submit`` returned.
            model: the task's model (default ``"seedream-5-0"``).
        """
        core = self._core
        handle = core.h()

        return _interruptible(_status_call(core, handle, model, task_id), "status")

    def wait(self, task_id: str, *, model: Optional[str] = None,
             timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT,
             on_update: Optional[OnUpdate] = None) -> Task:
        """Block until the task is terminal and return it.

        Args:
            task_id: the task to wait for.
            model: its model (default ``"seedream-5-0"``).
            timeout: seconds (``None``: no deadline, ``0``: one status check).
            on_update: called with each snapshot whose state differs from the last.

        Raises :class:`TaskFailedError` (with ``.task``, ``.fail_code``) if it failed and
        :class:`TimeoutError` (``.task`` = last snapshot or ``None``, ``.task_id``) at the
        deadline. Ctrl-C raises KeyboardInterrupt (``apixo_task_id`` on it); a deadline or
        an interrupt stops the tracking this wait started (the task goes on on the server:
        wait again to pick it up).
        """
        if timeout == 0:
            return self._check_once(task_id, model)
        return self._wait_sliced(model, task_id, _deadline(timeout), on_update, "wait")

    def _check_once(self, task_id: str, model: Optional[str]) -> Task:
        core = self._core
        handle = core.h()

        def call() -> Task:
            out = N.apixo_task_p()
            code = N.apixo_wait(handle, _b(model), _b(task_id), 0, byref(out))
            return _finish(code, out, core, task_id)

        return _interruptible(call, "status")

    def _wait_sliced(self, model: Optional[str], task_id: str, deadline: Optional[float],
                     on_update: Optional[OnUpdate], what: str) -> Task:
        """The wait behind ``wait`` and ``generate``: short ``apixo_wait`` slices on the
        caller's thread, with a callback registration keeping the task tracked (and polled
        on the client's schedule) between them."""
        core = self._core
        handle = core.h()
        token = core.register(_ignore)
        code = N.apixo_watch(handle, _b(model), _b(task_id), core.trampoline, token)
        if code != N.APIXO_OK:
            core.unregister(token)
            raise error_for_code(code, N.last_error(), task_id=task_id)
        last: Optional[Task] = None
        try:
            while True:
                if deadline is None:
                    slice_ms = int(_SLICE * 1000)
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"timed out waiting for task {task_id}", task=last,
                                           task_id=task_id, submitted=True)
                    slice_ms = max(1, min(int(_SLICE * 1000), int(left * 1000)))
                out = N.apixo_task_p()
                code = N.apixo_wait(handle, _b(model), _b(task_id), slice_ms, byref(out))
                message = N.last_error() if code != N.APIXO_OK else ""
                task = _take_task(out, core)
                if task is not None and (last is None or task.state != last.state):
                    _log.logger().debug("task %s: %s%s", task_id,
                                        f"{last.state} -> " if last is not None else "", task.state)
                    last = task
                    if on_update is not None:
                        on_update(task)
                if code == N.APIXO_ERR_TIMEOUT and not (task is not None and task.done):
                    continue
                if code == N.APIXO_OK and task is not None:
                    return task
                raise error_for_code(code, message, task or last, task_id=task_id,
                                     submitted=True)
        except BaseException as exc:
            core.stop_tracking(task_id, token)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                _note(exc, f"apixo: {what}() was interrupted; task {task_id} goes on running on "
                           f"the server: client.wait({task_id!r}) picks it up", task_id)
            raise

    @_doc
    def generate(self, prompt: str, *, timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT,
                 on_update: Optional[OnUpdate] = None,
                 model: Optional[str] = None,
                 max_images: Optional[int] = None,
                 resolution: Optional[Resolution] = None,
                 aspect_ratio: Optional[AspectRatio] = None,
                 mode: Optional[Mode] = None,
                 image_urls: Optional[Iterable[str]] = None,
                 sequential: Optional[Sequential] = None,
                 web_search: Optional[bool] = None,
                 output_format: Optional[OutputFormat] = None,
                 provider: Optional[Provider] = None,
                 callback_url: Optional[str] = None,
                 prompt_optimize_mode: Optional[PromptOptimizeMode] = None,
                 tag: Optional[str] = None,
                 extra: Optional[Mapping[str, Any]] = None) -> Task:
        """Submit and wait, with one overall deadline ``timeout`` (seconds; ``None``:
        none) that covers the local queue, the submit and the wait; returns the
        successful task. ``on_update(task)`` sees each state change. Raises like
        :meth:`submit` and :meth:`wait`: a :class:`TimeoutError` after the submit carries
        ``task_id`` and ``submitted=True``; one in the local queue ``submitted=False``."""
        deadline = _deadline(timeout)
        req = _Request(prompt, _fields(locals()))
        model = req.model
        task_id = self._submit_blocking(req, deadline, "generate")
        return self._wait_sliced(model, task_id, deadline, on_update, "generate")

    def download(self, url: str, path: PathLike) -> str:
        """Download ``url`` to ``path`` (temp file + rename); returns the path.

        Args:
            url: an http(s) URL, e.g. one of ``task.urls``.
            path: the file to write (its directory must exist).
        """
        handle = self._core.h()

        return _interruptible(_download_call(handle, url, path), "download")

    # -- callbacks -------------------------------------------------------------

    def _submit_async(self, req: _Request, on_done: OnDone) -> None:
        core = self._core
        token = core.register(on_done)
        try:
            _raise(N.apixo_submit_async(core.h(), req.ptr, core.trampoline, token))
        except BaseException:
            core.unregister(token)  # the callback will not fire
            raise
        _log.logger().debug("queued a submit with a callback: model %s", req.model)

    def watch(self, task_id: str, on_done: OnDone, *, model: Optional[str] = None) -> None:
        """Track an existing task; ``on_done(task, error)`` fires once when it ends.

        Args:
            task_id: the task to track.
            on_done: called once, on the client's dispatcher thread.
            model: its model (default ``"seedream-5-0"``).
        """
        core = self._core
        token = core.register(on_done, task_id=task_id)
        try:
            _raise(N.apixo_watch(core.h(), _b(model), _b(task_id), core.trampoline, token))
        except BaseException:
            core.unregister(token)
            raise

    def cancel(self, task_id: str) -> None:
        """Stop tracking a task: its ``on_done`` gets :class:`CancelledError`. Nothing
        is cancelled on the server. :class:`NotFoundError` if it is not tracked.

        Args:
            task_id: the tracked task.
        """
        _raise(N.apixo_cancel(self._core.h(), _b(task_id)))

    def drain(self, timeout: Optional[float] = None) -> None:
        """Block until every ``on_done`` registered so far has fired
        (:class:`TimeoutError` at the deadline). Not from inside a callback.

        Args:
            timeout: seconds (``None``: no deadline).
        """
        handle = self._core.h()
        ms = _ms(timeout)
        _interruptible(lambda: _raise(N.apixo_drain(handle, ms)), "drain")

    def resume(self, on_done: OnDone) -> None:
        """Re-track every task of the journal whose callback was not delivered;
        ``on_done(task, error)`` fires exactly once for each (submits that never left
        the local queue are sent now). A task whose submit was sent but whose answer
        was lost arrives with :class:`IndeterminateError`, ``task.id == ""`` and
        ``task.tag`` set: it was NOT resubmitted (see the README). Needs a client
        created with ``journal=`` (else :class:`InvalidArgumentError`).

        Args:
            on_done: called once per journalled task, on the dispatcher thread.
        """
        core = self._core
        token = core.register(on_done, once=False)  # fires once per journalled task
        try:
            _raise(N.apixo_resume(core.h(), core.trampoline, token))
        except BaseException:
            core.unregister(token)
            raise

    # -- webhooks --------------------------------------------------------------

    def handle_webhook(self, body: Union[bytes, bytearray, memoryview, str]) -> Task:
        """Hand the raw body of a webhook POST to the client. A tracked task is
        completed once (its ``on_done`` fires, waits return); repeats are recognised
        and ignored. Returns the delivered snapshot. Raises :class:`NotFoundError`
        (with ``.task``) for a task this client does not track and
        :class:`ProtocolError` for a malformed body. Thread-safe.

        Args:
            body: the request body as received (bytes, or text).
        """
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        out = N.apixo_task_p()
        code = N.apixo_webhook_ingest(self._core.h(), data, len(data), byref(out))
        return _finish(code, out, self._core, None)

    # -- asyncio -----------------------------------------------------------------

    @_doc
    async def asubmit(self, prompt: str, *,
                      model: Optional[str] = None,
                      max_images: Optional[int] = None,
                      resolution: Optional[Resolution] = None,
                      aspect_ratio: Optional[AspectRatio] = None,
                      mode: Optional[Mode] = None,
                      image_urls: Optional[Iterable[str]] = None,
                      sequential: Optional[Sequential] = None,
                      web_search: Optional[bool] = None,
                      output_format: Optional[OutputFormat] = None,
                      provider: Optional[Provider] = None,
                      callback_url: Optional[str] = None,
                      prompt_optimize_mode: Optional[PromptOptimizeMode] = None,
                      tag: Optional[str] = None,
                      extra: Optional[Mapping[str, Any]] = None) -> str:
        """:meth:`submit` for asyncio: returns the task id. The submit runs on the
        client's pool of at most 2 helper threads (shared by every coroutine; the local
        queue past the concurrency cap is the library's). Cancelled before it was sent,
        nothing is sent."""
        req = _Request(prompt, _fields(locals()))
        return await self._asubmit(req, None)

    async def _asubmit(self, req: _Request, deadline: Optional[float]) -> str:
        core = self._core
        try:
            self._bind()
            handle = core.h()
        except BaseException:
            req.close()
            raise

        call = _submit_call(handle, req, deadline)

        def late(task_id: str) -> None:
            _log.logger().warning("apixo: task %s was accepted after its asubmit/agenerate was "
                                  "cancelled; it runs on the server: client.awatch(%r) picks it up",
                                  task_id, task_id)

        _log.logger().debug("queueing a submit: model %s", req.model)
        # the pool's call owns req: it closes it, or never_ran does when it never started
        task_id = await core.in_pool(call, never_ran=req.close, late=late)
        _log.logger().debug("submit accepted: task %s (%s)", task_id, req.model)
        return task_id

    async def astatus(self, task_id: str, *, model: Optional[str] = None) -> Task:
        """:meth:`status` for asyncio (one GET on the client's helper pool).

        Args:
            task_id: the task.
            model: its model (default ``"seedream-5-0"``).
        """
        core = self._core
        handle = core.h()
        self._bind()
        return await core.in_pool(_status_call(core, handle, model, task_id))

    async def adownload(self, url: str, path: PathLike) -> str:
        """:meth:`download` for asyncio (on the client's helper pool)."""
        handle = self._core.h()
        self._bind()
        return await self._core.in_pool(_download_call(handle, url, path))

    @_doc
    async def agenerate(self, prompt: str, *, timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT,
                        on_update: Optional[OnUpdate] = None,
                        model: Optional[str] = None,
                        max_images: Optional[int] = None,
                        resolution: Optional[Resolution] = None,
                        aspect_ratio: Optional[AspectRatio] = None,
                        mode: Optional[Mode] = None,
                        image_urls: Optional[Iterable[str]] = None,
                        sequential: Optional[Sequential] = None,
                        web_search: Optional[bool] = None,
                        output_format: Optional[OutputFormat] = None,
                        provider: Optional[Provider] = None,
                        callback_url: Optional[str] = None,
                        prompt_optimize_mode: Optional[PromptOptimizeMode] = None,
                        tag: Optional[str] = None,
                        extra: Optional[Mapping[str, Any]] = None) -> Task:
        """:meth:`generate` for asyncio: :meth:`asubmit`, then :meth:`awatch`, with one
        deadline. No thread per task: the tracking runs on the client's engine and the
        result comes back to the loop. A timeout or a cancellation stops tracking the task
        (its id is on the TimeoutError, and ``apixo_task_id`` on the CancelledError)."""
        deadline = _deadline(timeout)
        req = _Request(prompt, _fields(locals()))
        model = req.model
        task_id = await self._asubmit(req, deadline)
        return await self._awatch(task_id, model, deadline, on_update)

    async def awatch(self, task_id: str, *, model: Optional[str] = None,
                     timeout: Optional[float] = DEFAULT_WAIT_TIMEOUT,
                     on_update: Optional[OnUpdate] = None) -> Task:
        """:meth:`wait` for asyncio: no thread; the completion comes back to the loop.

        Args:
            task_id: the task to wait for.
            model: its model (default ``"seedream-5-0"``).
            timeout: seconds (``None``: no deadline).
            on_update: called on the loop with each snapshot whose state changed.
        """
        return await self._awatch(task_id, model, _deadline(timeout), on_update)

    async def _awatch(self, task_id: str, model: Optional[str], deadline: Optional[float],
                      on_update: Optional[OnUpdate]) -> Task:
        import asyncio

        core = self._core
        handle = core.h()
        loop = self._bind()
        fut: asyncio.Future[Task] = loop.create_future()
        token = core.register(_resolver(loop, fut))
        code = N.apixo_watch(handle, _b(model), _b(task_id), core.trampoline, token)
        if code != N.APIXO_OK:
            core.unregister(token)
            raise error_for_code(code, N.last_error(), task_id=task_id)
        last: List[Task] = []
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"timed out waiting for task {task_id}",
                                       task=last[-1] if last else None, task_id=task_id,
                                       submitted=True)
                # with on_update, look at the latest snapshot twice a second
                step = left if on_update is None else min(0.5, 0.5 if left is None else left)
                done, _ = await asyncio.wait({fut}, timeout=step)
                if done:
                    task = fut.result()
                    if on_update is not None and (not last or last[-1].state != task.state):
                        on_update(task)
                    return task
                seen = self._peek(handle, model, task_id)
                if seen is not None and (not last or last[-1].state != seen.state):
                    last.append(seen)
                    if on_update is not None:
                        on_update(seen)
        except BaseException as exc:
            core.stop_tracking(task_id, token)
            if isinstance(exc, asyncio.CancelledError):
                _note(exc, f"apixo: waiting for task {task_id} was cancelled; it goes on "
                           f"running on the server: client.awatch({task_id!r}) picks it up",
                      task_id)
            raise

    def _peek(self, handle: Any, model: Optional[str], task_id: str) -> Optional[Task]:
        """The last snapshot the client's polls saw, if not terminal (a 1 ms
        ``apixo_wait`` of a tracked task: no request is sent)."""
        out = N.apixo_task_p()
        N.apixo_wait(handle, _b(model), _b(task_id), 1, byref(out))
        task = _take_task(out, self._core)
        return None if task is None or task.done else task

    def __repr__(self) -> str:
        return f"<apixo.Client {'closed' if self.closed else 'open'}>"


class AsyncClient(Client):
    """A :class:`Client` for asyncio programs: nothing of Python ever runs on a library
    thread. It uses the library's queue delivery mode: completions and log lines wait in
    the client's queue, and the event loop runs them (``loop.add_reader`` on the client's
    event descriptor, then ``apixo_dispatch``) from the first ``await`` of one of its
    coroutines on. The client has no dispatcher thread, so ``agenerate`` and ``awatch``
    are settled on the loop thread itself; ``on_done`` callbacks and the logger run there
    too. The blocking calls work as on :class:`Client` (``drain`` runs the waiting
    callbacks on its caller). Use one loop per client and close it on that loop
    (``async with`` or :meth:`aclose`). Takes the options of :class:`Client`.
    """

    _DELIVERY = N.APIXO_DELIVERY_QUEUE

    def _bind(self) -> asyncio.AbstractEventLoop:
        import asyncio

        loop = asyncio.get_running_loop()
        self._core.bind_loop(loop)
        return loop

    async def __aenter__(self) -> AsyncClient:
        """``async with AsyncClient() as client:`` binds it to the running loop and closes
        it (:meth:`aclose`) at the end."""
        self._bind()
        return self


def _submit_call(handle: Any, req: _Request, deadline: Optional[float]) -> Callable[[], str]:
    """The blocking submit of ``req`` (which it frees), its local queue wait bounded by
    ``deadline``; run on a helper thread (the caller's wait stays interruptible)."""
    def call() -> str:
        try:
            started = time.monotonic()
            queue_ms = -1 if deadline is None else max(0, int((deadline - started) * 1000))
            out = c_char_p()
            code = N.apixo_submit_timeout(handle, req.ptr, queue_ms, byref(out))
            if code != N.APIXO_OK:
                raise error_for_code(code, N.last_error(), submitted=(
                    None if code == N.APIXO_ERR_INDETERMINATE else False))
            task_id = N.take_string(out) or ""
            _log.logger().debug("submit accepted: task %s (%s) after %.0f ms", task_id,
                                req.model, (time.monotonic() - started) * 1000)
            return task_id
        finally:
            req.close()

    return call


def _status_call(core: _Core, handle: Any, model: Optional[str],
                 task_id: str) -> Callable[[], Task]:
    """One status query, for a helper thread."""
    def call() -> Task:
        out = N.apixo_task_p()
        started = time.monotonic()
        code = N.apixo_get_status(handle, _b(model), _b(task_id), byref(out))
        if code != N.APIXO_OK:
            raise error_for_code(code, N.last_error(), task_id=task_id)
        task = _take_task(out, core)
        assert task is not None
        _log.logger().debug("status of %s: %s after %.0f ms", task_id, task.state,
                            (time.monotonic() - started) * 1000)
        return task

    return call


def _download_call(handle: Any, url: str, path: PathLike) -> Callable[[], str]:
    """One download to a file, for a helper thread."""
    def call() -> str:
        started = time.monotonic()
        _raise(N.apixo_download(handle, _b(url), _path(path)))
        _log.logger().debug("downloaded %s to %s in %.0f ms", url, os.fspath(path),
                            (time.monotonic() - started) * 1000)
        return os.fspath(path)

    return call


def _finish(code: int, out: Any, core: _Core, task_id: Optional[str]) -> Task:
    message = N.last_error() if code != N.APIXO_OK else ""
    task = _take_task(out, core)
    if code != N.APIXO_OK:
        raise error_for_code(code, message, task, task_id=task_id)
    assert task is not None
    return task


def _int64(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, f"{name}: expected an integer")
    if not -2**63 <= value < 2**63:
        raise error_for_code(N.APIXO_ERR_INVALID_ARGUMENT, f"{name}: out of range")
    checked: int = value
    return checked


def _resolver(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Task]) -> OnDone:
    def on_done(task: Optional[Task], error: Optional[Error]) -> None:
        def settle() -> None:
            if fut.done():  # cancelled or timed out meanwhile
                return
            if error is not None:
                fut.set_exception(error)
            elif task is not None:
                fut.set_result(task)

        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    return on_done

