"""The ``apixo`` logger, set up when the package first logs (importing logging costs
start-up time: ``import apixo`` alone does not).

A library stays silent unless asked: the logger gets a NullHandler, so that Python's
"last resort" handler never prints the lines of an error the program caught.
``APIXO_LOG=debug`` (or ``info``, ``warning``, ``error``) in the environment prints them to
stderr without any code, like ``OPENAI_LOG``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import logging

_cache: list[logging.Logger] = []


def logger() -> logging.Logger:
    """``logging.getLogger("apixo")``, with its NullHandler and the APIXO_LOG switch."""
    if _cache:
        return _cache[0]
    import logging
    import os

    log = logging.getLogger("apixo")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())
    levels = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "warn": logging.WARNING, "error": logging.ERROR}
    level = levels.get(os.environ.get("APIXO_LOG", "").strip().lower())
    if level is not None:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s"))
        log.addHandler(handler)
        log.setLevel(level)
    _cache.append(log)
    return log
