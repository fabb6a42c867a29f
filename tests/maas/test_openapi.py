"""The OpenAPI document types every response: each operation's success status has a schema with
properties (or items of one), never an empty or untyped object."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

METHODS = ("get", "put", "post", "delete", "patch")


def _typed(schema: dict[str, Any], components: dict[str, Any], seen: frozenset[str] = frozenset()) -> bool:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return name in seen or _typed(components[name], components, seen | {name})
    for key in ("oneOf", "anyOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return bool(options) and all(_typed(s, components, seen) for s in options)
    kind = schema.get("type")
    if kind == "array":
        return "items" in schema and _typed(schema["items"], components, seen)
    if kind == "object":
        return bool(schema.get("properties"))
    return False


def test_every_operation_has_a_typed_success_response(client: TestClient) -> None:
    document = client.get("/schema/openapi.json").json()
    components = document.get("components", {}).get("schemas", {})
    untyped = []
    operations = 0
    for path, item in document["paths"].items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            operations += 1
            success = [status for status in operation["responses"] if status.startswith("2")]
            if len(success) != 1:
                untyped.append(f"{method.upper()} {path}: success statuses {success}")
                continue
            content = operation["responses"][success[0]].get("content", {})
            # JSON, or a JSON format of its own (GeoJSON: application/geo+json).
            schema = content.get("application/json", content.get("application/geo+json", {})).get("schema")
            if schema is None or not _typed(schema, components):
                untyped.append(f"{method.upper()} {path} {success[0]}: {schema}")
    assert operations > 20
    assert not untyped, "\n".join(untyped)
