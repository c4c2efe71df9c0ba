"""apixo: a client for the APIXO image-generation task API (Seedream 5.0 and others).

A thin Pythonic layer over libapixo (loaded with ctypes, see :mod:`apixo._native`)::

    import apixo

    with apixo.Client() as client:              # API key from APIXO_API_KEY
        task = client.generate("a cozy cyberpunk cafe", max_images=2, resolution="2K")
        print(task.urls)
        task.save("out/")
"""

from . import _errors
from ._client import Client, OnDone, Task, library_version
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

__version__ = "0.1.0"

# The error classes are listed once, in _errors.
__all__ = ["Client", "Task", "OnDone", "library_version"] + [
    name for name in _errors.__all__ if name != "error_for_code"
]
