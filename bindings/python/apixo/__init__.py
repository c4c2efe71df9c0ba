"""apixo: a client for the APIXO image-generation task API (Seedream 5.0 and others).

A thin Pythonic layer over libapixo (loaded with ctypes, see :mod:`apixo._native`)::

    import apixo

    with apixo.Client() as client:              # API key from APIXO_API_KEY
        task = client.generate("a cozy cyberpunk cafe", max_images=2, resolution="2K")
        print(task.urls)
        task.save("out/")

Logging: the library's lines go to the ``apixo`` logger (silent unless the program
configures logging); ``APIXO_LOG=debug`` (or ``info``, ``warning``, ``error``) in the
environment prints them to stderr without any code.
"""

from __future__ import annotations

from . import _client, _types
from ._client import AsyncClient, Client, Stats, Task, library_version
from ._errors import (
    AuthenticationError,
    BadRequestError,
    CancelledError,
    ClosedError,
    Error,
    IndeterminateError,
    InvalidArgumentError,
    InvalidRequestError,
    LocalIOError,
    NetworkError,
    NoMemoryError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ServerError,
    TaskFailedError,
    TimeoutError,
)

# The type aliases need `typing`, which costs start-up time: type checkers see them here,
# the run time builds them when first asked for (`apixo.Resolution`).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._client import OnDone, OnUpdate
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
else:
    def __getattr__(name):
        if name in _types.__all__:
            return getattr(_types, name)
        if name in ("OnDone", "OnUpdate"):
            return getattr(_client, name)
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = [
    "Client",
    "AsyncClient",
    "Task",
    "Stats",
    "OnDone",
    "OnUpdate",
    "library_version",
    "AspectRatio",
    "Mode",
    "OutputFormat",
    "PromptOptimizeMode",
    "Provider",
    "Resolution",
    "Sequential",
    "State",
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

