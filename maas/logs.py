"""No secret in a log line: what `maas serve` installs on uvicorn's handlers and the service's own loggers.

A WebSocket URL carries `?token=` or `?ticket=` (browsers cannot send headers there), and uvicorn
logs every request line with its query string; a secret could also reach a message or a traceback
(an Authorization header, a token in an error). Every record is rewritten when it is made (a log
record factory), whichever logger and handler it goes to: uvicorn's, Litestar's (which takes over
the root logger) or the service's.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "[redacted]"
_QUERY = re.compile(r"(?i)\b(token|ticket|password|access_token)=[^&\s\"']+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{12,}")  # credentials, not "basic checks"
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    """`text` without query-string secrets, Authorization credentials and anything shaped like a JWT."""
    text = _QUERY.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def _redacted(value: object) -> object:
    """The argument, or its text redacted when that text holds a secret (a URL object, an exception)."""
    if value is None or isinstance(value, (int, float)):
        return value
    text = value if isinstance(value, str) else str(value)
    clean = redact(text)
    return value if clean == text else clean


def scrub(record: logging.LogRecord) -> None:
    """Rewrite a record's message, arguments and traceback text."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, dict):
        record.args = {k: _redacted(v) for k, v in record.args.items()}
    elif isinstance(record.args, tuple):
        record.args = tuple(_redacted(a) for a in record.args)
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)


def install() -> None:
    """Scrub every log record of this process when it is made (once; later calls do nothing)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub(record)
        return record

    factory.redacts_secrets = True  # type: ignore[attr-defined]  # marks the factory as ours
    logging.setLogRecordFactory(factory)


class RedactSecrets(logging.Filter):
    """The filter of `log_config`'s handlers. uvicorn builds it in every worker process from the
    configuration before the app is imported, so building it installs the record factory there too."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        install()

    def filter(self, record: logging.LogRecord) -> bool:
        scrub(record)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the filter on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {**config.get("filters", {}), "redact_secrets": {"()": "maas.logs.RedactSecrets"}}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact_secrets"]
    return config
