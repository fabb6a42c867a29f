"""schemathesis against the OpenAPI document of a real `maas serve` (two workers), with the tokens of
four roles: no answer is a 5xx, and every answer is the one the document promises (status, content
type, problem+json, body schema, Allow on 405). Derandomised, so a CI run is repeatable."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.generation.case import Case

from tests.maas.conftest import Users

ROLES = ("admin", "rider", "driver", "agency")
# A request the schema allows may still be refused for what it means (422: a ride in the past, a
# vehicle that does not exist, a polygon that crosses itself), never as malformed (400, 413, 415).
ACCEPTED = ["2xx", "401", "403", "404", "409", "422", "429"]
CONFIG = schemathesis.Config.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}}, "generation": {"allow-x00": True}}
)
EXAMPLES = 8  # per operation and generation mode; each example is sent with the token of every role
# Operations that end the caller (logging out, erasing oneself): each case gets fresh users, so that
# the shared tokens stay valid for every other operation.
ENDS_THE_CALLER = {"DELETE /sessions/current", "DELETE /me"}
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found: shrinking costs minutes
    suppress_health_check=list(HealthCheck),
)


def _exercise(
    operation: Any, mode: GenerationMode, roles: Callable[[], list[dict[str, str]]], session: requests.Session
) -> int:
    """Send the operation's generated cases with every role's token; returns how many requests."""
    sent = 0

    @SETTINGS
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        nonlocal sent
        for headers in roles():
            case.call_and_validate(headers=headers, session=session)
            sent += 1

    run()
    return sent


def test_the_api_answers_as_its_openapi_document_says(server: str, users: Users) -> None:
    shared = [users.make(role)[1] for role in ROLES]
    schema = schemathesis.openapi.from_url(f"{server}/schema/openapi.json", config=CONFIG)
    failures, sent = [], 0
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    fresh = operation.label in ENDS_THE_CALLER
                    roles = (lambda: [users.make(role)[1] for role in ROLES]) if fresh else (lambda: shared)
                    sent += _exercise(operation, mode, roles, session)
                except hypothesis.errors.Unsatisfiable:
                    continue  # nothing of this operation can be made invalid (no parameters, no body)
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - report every operation's failure
                    failures.append(f"{operation.label} ({mode.value}): {exc}")
    print(f"SENT {sent}")
    assert not failures, "\n\n".join(failures)
    for headers in shared:  # the shared tokens stayed valid throughout
        assert requests.get(f"{server}/sessions", headers=headers, timeout=30).status_code == 200
    assert sent >= 2000, sent


METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


def _concrete(path: str, operation: dict[str, Any]) -> str:
    """The path with a value of the right type for each path parameter."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            schema = parameter["schema"]
            value = "1" if schema.get("type") == "integer" else "x"
            value = str(uuid.uuid4()) if schema.get("format") == "uuid" else value
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


def test_an_undocumented_method_answers_405_with_the_documented_methods_in_allow(server: str, users: Users) -> None:
    _, admin = users.make("admin")
    document = requests.get(f"{server}/schema/openapi.json", timeout=30).json()
    wrong, tried = [], 0
    for path, item in document["paths"].items():
        declared = {m.upper() for m in item if m.upper() in METHODS}
        concrete = _concrete(path, next(iter(item.values())))
        for method in sorted(set(METHODS) - declared):
            answer = requests.request(method, f"{server}{concrete}", headers=admin, timeout=30)
            tried += 1
            allow = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
            problem = answer.headers.get("content-type", "").startswith("application/problem+json")
            if answer.status_code != 405 or allow - {"OPTIONS", "HEAD"} != declared or not problem:
                wrong.append(
                    f"{method} {path}: {answer.status_code}, Allow: {sorted(allow)}, declared {sorted(declared)}"
                )
    assert tried > 50
    assert not wrong, "\n".join(wrong)
