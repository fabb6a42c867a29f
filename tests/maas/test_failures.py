"""What a caller sees when the service fails: a bug is a 500 whose traceback is logged under the request id the
response carries; a database outage is a 503 with Retry-After, and the service recovers by itself."""

from __future__ import annotations

import logging
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from maas.app import create_app
from maas.settings import Settings
from tests.maas.conftest import Users, execute, logged_by, own_database

HERRENBERG_BAHNHOF = {"lat": 48.5935, "lon": 8.8630}


@pytest.fixture
def errors_log() -> Iterator[list[logging.LogRecord]]:
    """The records of the service's error log during the test."""
    with logged_by("maas.errors") as records:
        yield records


@pytest.fixture
def failing_vehicle_name(settings: Settings, client: TestClient) -> Iterator[str]:
    """A vehicle name whose insert the database fails with an internal error (a trigger): a real bug-like
    failure on a real code path, for this name only."""
    name = f"boom-{uuid.uuid4().hex[:8]}"
    function = f"fail_{name.replace('-', '_')}"
    execute(
        settings,
        f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.name = '{name}' THEN RAISE EXCEPTION 'disk on fire' USING ERRCODE = 'XX000'; END IF;"
        " RETURN NEW; END $$",
    )
    execute(settings, f"CREATE TRIGGER {function} BEFORE INSERT ON vehicles FOR EACH ROW EXECUTE FUNCTION {function}()")
    yield name
    execute(settings, f"DROP TRIGGER {function} ON vehicles")
    execute(settings, f"DROP FUNCTION {function}()")


def test_a_bug_is_logged_with_its_traceback_under_the_request_id_of_the_response(
    client: TestClient, users: Users, errors_log: list[logging.LogRecord], failing_vehicle_name: str
) -> None:
    _, operator = users.make("operator")
    body = {"name": failing_vehicle_name, "seats": 3, "depot": HERRENBERG_BAHNHOF}
    answer = client.post("/vehicles", headers=operator, json=body)
    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    rid = answer.headers["x-request-id"]
    problem = answer.json()
    assert problem["request_id"] == rid and rid in problem["detail"]
    assert "disk on fire" not in answer.text and "Traceback" not in answer.text  # nothing of the internals
    [record] = [r for r in errors_log if rid in r.getMessage()]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert "disk on fire" in logging.Formatter().formatException(record.exc_info)

    # A proxy's id is kept, so that its log and ours meet; one that is not an id is replaced.
    given = client.post("/vehicles", headers={**operator, "X-Request-ID": "lb-7f3a.42"}, json=body)
    assert given.headers["x-request-id"] == "lb-7f3a.42" == given.json()["request_id"]
    forged = client.get("/health", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert forged.headers["x-request-id"] not in ("", "a b\tc" + "x" * 200)


def _database_name(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


def test_a_database_outage_answers_503_with_retry_after_and_the_service_recovers(
    settings: Settings, network_dir: Path, tmp_path: Path
) -> None:
    with own_database(settings, "maas_outage", network_dir, tmp_path) as own, TestClient(create_app(own)) as app:
        assert own.database_url is not None
        name = _database_name(own.database_url)
        _, operator = Users(own).make("operator")
        assert app.get("/vehicles", headers=operator).status_code == 200

        # The database stops taking connections and drops the ones it has (as in a restart or a failover).
        execute(settings, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        execute(settings, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        for _ in range(2):  # the connection lost, then the connection refused
            down = app.get("/vehicles", headers=operator)
            assert down.status_code == 503, down.text
            assert down.headers["content-type"].startswith("application/problem+json")
            assert int(down.headers["retry-after"]) > 0
            assert "database" in down.json()["detail"] and down.json()["request_id"] == down.headers["x-request-id"]
        not_ready = app.get("/ready")  # answered without a token: says what failed, not where
        assert not_ready.status_code == 503 and not_ready.json()["database"] is False
        assert name not in not_ready.text and "127.0.0.1" not in not_ready.text, not_ready.text
        assert (
            app.post(
                "/vehicles", headers=operator, json={"name": "x", "seats": 3, "depot": HERRENBERG_BAHNHOF}
            ).status_code
            == 503
        )

        execute(settings, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        assert app.get("/vehicles", headers=operator).status_code == 200
        assert app.get("/ready").status_code == 200
