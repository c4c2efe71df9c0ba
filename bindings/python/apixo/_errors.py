"""Exceptions: apixo.Error and one subclass per apixo_code."""

from __future__ import annotations

import builtins

TYPE_CHECKING = False  # typing costs start-up time
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple, Type

    from ._client import Task

__all__ = [
    "Error",
    "InvalidRequestError",
    "InvalidArgumentError",
    "BadRequestError",
    "AuthenticationError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "NetworkError",
    "TimeoutError",
    "ProtocolError",
    "TaskFailedError",
    "CancelledError",
    "ClosedError",
    "LocalIOError",
    "NoMemoryError",
    "IndeterminateError",
]


class Error(Exception):
    """Any error reported by libapixo.

    Attributes:
        code: the numeric ``apixo_code``.
        code_name: its C name, for example ``"APIXO_ERR_TIMEOUT"``.
        message: the text of ``apixo_last_error()`` (or the fail message of a task).
        task: the last task snapshot involved, or ``None``.
        task_id: the id of the task concerned when one is known (also when no snapshot
            was ever received, e.g. a ``generate`` that timed out before the first poll).
        submitted: ``True`` when the API accepted the submit (a task exists and is
            billed), ``False`` when certainly no task was created, ``None`` when that is
            not known (:class:`IndeterminateError`) or the call made no submit.

    Errors pickle with all their attributes (e.g. across ``multiprocessing``).
    """

    code: int = -1
    code_name: str = "APIXO_ERR_UNKNOWN"
    message: str
    task: Optional[Task]
    task_id: Optional[str]
    submitted: Optional[bool]

    def __init__(self, message: str = "", *, task: Optional[Task] = None,
                 code: Optional[int] = None, task_id: Optional[str] = None,
                 submitted: Optional[bool] = None) -> None:
        """``message``: the one-line text; ``task``: a snapshot; ``code``: the numeric code
        when it differs from the class's (an unknown future code); ``task_id`` (default:
        ``task.id``) and ``submitted``: see the class attributes."""
        super().__init__(message or self.code_name)
        self.message = message
        self.task = task
        self.task_id = task_id or (task.id if task is not None and task.id else None)
        self.submitted = submitted
        if code is not None and code != type(self).code:
            # an unknown future code: keep the number the library gave
            self.code = code

    def __str__(self) -> str:
        return self.message or self.code_name

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_restore, (type(self), self.message, dict(self.__dict__)))


def _restore(cls: Type[Error], message: str, state: Dict[str, Any]) -> Error:
    """Unpickles an error: built from its message alone (no task: nothing is derived), then
    given back every attribute."""
    err = cls(message)
    err.__dict__.update(state)
    return err


class InvalidRequestError(Error):
    """The request was rejected: locally (InvalidArgumentError) or by the server
    (BadRequestError). Fix the request; retrying will not help."""


class InvalidArgumentError(InvalidRequestError, ValueError):
    """APIXO_ERR_INVALID_ARGUMENT: rejected locally, nothing was sent."""

    code, code_name = 1, "APIXO_ERR_INVALID_ARGUMENT"


class BadRequestError(InvalidRequestError):
    """APIXO_ERR_BAD_REQUEST: HTTP 400 from the API."""

    code, code_name = 2, "APIXO_ERR_BAD_REQUEST"


class AuthenticationError(Error):
    """APIXO_ERR_UNAUTHORIZED: HTTP 401, missing or invalid API key."""

    code, code_name = 3, "APIXO_ERR_UNAUTHORIZED"


class PaymentRequiredError(Error):
    """APIXO_ERR_PAYMENT_REQUIRED: HTTP 402, insufficient balance."""

    code, code_name = 4, "APIXO_ERR_PAYMENT_REQUIRED"


class PermissionDeniedError(Error):
    """APIXO_ERR_FORBIDDEN: HTTP 403, forbidden or content policy."""

    code, code_name = 5, "APIXO_ERR_FORBIDDEN"


class NotFoundError(Error, LookupError):
    """APIXO_ERR_NOT_FOUND: HTTP 404 (unknown model or task), or a task id this
    client does not track (cancel, webhook)."""

    code, code_name = 6, "APIXO_ERR_NOT_FOUND"


class RateLimitError(Error):
    """APIXO_ERR_RATE_LIMITED: HTTP 429 after the retry budget."""

    code, code_name = 7, "APIXO_ERR_RATE_LIMITED"


class ServerError(Error):
    """APIXO_ERR_SERVER: HTTP 5xx after the retry budget."""

    code, code_name = 8, "APIXO_ERR_SERVER"


class NetworkError(Error, ConnectionError):
    """APIXO_ERR_NETWORK: DNS, connect, TLS or reset."""

    code, code_name = 9, "APIXO_ERR_NETWORK"


class TimeoutError(Error, builtins.TimeoutError):
    """APIXO_ERR_TIMEOUT: a deadline passed. ``task`` is the last snapshot seen,
    if any. Also a subclass of the built-in ``TimeoutError``."""

    code, code_name = 10, "APIXO_ERR_TIMEOUT"


class ProtocolError(Error):
    """APIXO_ERR_PROTOCOL: an answer that is not the documented shape (also a
    download larger than ``max_download_bytes`` and a malformed webhook body)."""

    code, code_name = 11, "APIXO_ERR_PROTOCOL"


class TaskFailedError(Error):
    """APIXO_ERR_TASK_FAILED: the task ended in state ``failed``.

    ``fail_code`` (e.g. ``"CONTENT_VIOLATION"``) and ``fail_message`` come from the
    task; ``task`` is the failed snapshot.
    """

    code, code_name = 12, "APIXO_ERR_TASK_FAILED"

    fail_code: Optional[str]
    fail_message: Optional[str]

    def __init__(self, message: str = "", *, task: Optional[Task] = None,
                 code: Optional[int] = None, task_id: Optional[str] = None,
                 submitted: Optional[bool] = None) -> None:
        """As :class:`Error`; the message is derived from ``task`` when it is given."""
        self.fail_code = task.fail_code if task is not None else None
        self.fail_message = task.fail_message if task is not None else None
        if task is not None:
            message = f"task {task.id} failed: {self.fail_code}: {self.fail_message}"
        super().__init__(message, task=task, code=code, task_id=task_id,
                         submitted=True if submitted is None else submitted)


class CancelledError(Error):
    """APIXO_ERR_CANCELLED: tracking was stopped by ``Client.cancel`` (the task
    itself still runs on the server)."""

    code, code_name = 13, "APIXO_ERR_CANCELLED"


class ClosedError(Error):
    """APIXO_ERR_CLOSED: the client is closed or closing."""

    code, code_name = 14, "APIXO_ERR_CLOSED"


class LocalIOError(Error, OSError):
    """APIXO_ERR_IO: a local file error (download target, journal unreadable or
    locked by another client)."""

    code, code_name = 15, "APIXO_ERR_IO"

    def __str__(self) -> str:  # OSError's own __str__ would print args
        return self.message or self.code_name



class NoMemoryError(Error, MemoryError):
    """APIXO_ERR_NO_MEMORY."""

    code, code_name = 16, "APIXO_ERR_NO_MEMORY"


class IndeterminateError(Error):
    """APIXO_ERR_INDETERMINATE: a submit was sent but its answer was lost. The task
    may exist (and be billed); it is never resubmitted automatically. ``task.tag``
    identifies it when it comes from ``Client.resume``."""

    code, code_name = 17, "APIXO_ERR_INDETERMINATE"


_BY_CODE: Dict[int, Type[Error]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError, BadRequestError, AuthenticationError, PaymentRequiredError,
        PermissionDeniedError, NotFoundError, RateLimitError, ServerError, NetworkError,
        TimeoutError, ProtocolError, TaskFailedError, CancelledError, ClosedError,
        LocalIOError, NoMemoryError, IndeterminateError,
    )
}


def error_for_code(code: int, message: str = "", task: Optional[Task] = None, *,
                   task_id: Optional[str] = None, submitted: Optional[bool] = None) -> Error:
    """The exception for a non-zero apixo_code (``Error`` for an unknown code), with the
    task snapshot, task id and submit outcome when they are known."""
    cls = _BY_CODE.get(code, Error)
    return cls(message, task=task, code=code, task_id=task_id, submitted=submitted)
