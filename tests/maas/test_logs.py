"""Secrets are redacted from log records wherever they are: arguments, messages, tracebacks."""

from __future__ import annotations

import io
import logging

from maas.logs import install, redact

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


def test_query_values_credentials_and_tokens_are_redacted_and_plain_words_stay() -> None:
    assert redact(f"GET /ws/fleet?ticket=abc123&x=1 and ?token={TOKEN}") == (
        "GET /ws/fleet?ticket=[redacted]&x=1 and ?token=[redacted]"
    )
    assert redact(f"Authorization: Bearer {TOKEN}") == "Authorization: Bearer [redacted]"
    assert redact("Authorization: Basic dXNlcjpwYXNzd29yZA==") == "Authorization: Basic [redacted]"
    assert redact(f"a token {TOKEN} in a message") == "a token [redacted] in a message"
    assert redact("basic checks passed for 3 tokens") == "basic checks passed for 3 tokens"


def test_every_record_of_the_process_is_scrubbed_whatever_its_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # a handler without any filter of ours
    logger = logging.getLogger("tests.maas.test_logs")
    logger.addHandler(handler)
    previous = logging.getLogRecordFactory()
    try:
        install()
        install()  # once is enough; twice changes nothing
        logger.warning('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", f"/ws/fleet?token={TOKEN}")
        try:
            raise ValueError(f"bad header Bearer {TOKEN}")
        except ValueError:
            logger.exception("while reading %s", "a request")
    finally:
        logging.setLogRecordFactory(previous)
        logger.removeHandler(handler)
    told = stream.getvalue()
    assert '"WebSocket /ws/fleet?token=[redacted]" [accepted]' in told
    assert "ValueError: bad header Bearer [redacted]" in told
    assert TOKEN not in told and TOKEN.split(".")[2] not in told
