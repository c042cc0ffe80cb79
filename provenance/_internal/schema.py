"""The project's JSON Schemas (``provenance/schemas``), compiled, with the one rule JSON Schema cannot say.

Draft-07 calls ``1.0`` an integer. Our formats do not: where a schema wants an integer the JSON text must
hold an integer literal, because readers differ on what ``1.0`` is (Python reads a float, browsers a
number that prints as ``1``). The /verify page applies the same schemas and the same rule
(``webui/src/schema.js``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from provenance.errors import FormatError

Path = tuple[str, ...]  # property names; "*" for every item of an array


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A schema of ``provenance/schemas`` by file name (the /verify page bundles the same files)."""
    text = resources.files("provenance.schemas").joinpath(name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with each local ``{"$ref": "#/$defs/x"}`` replaced by that definition (same meaning)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            # Draft-07 ignores the siblings of "$ref" (here descriptions): the definition replaces them all.
            return inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [inline_refs(v, defs) for v in node]
    return node


def _integer_paths(node: Any, at: Path = ()) -> Iterator[Path]:
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer":
        yield at
    for name, sub in node.get("properties", {}).items():
        yield from _integer_paths(sub, (*at, name))
    for sub in node.get("oneOf", []):
        yield from _integer_paths(sub, at)
    if "items" in node:
        yield from _integer_paths(node["items"], (*at, "*"))


def _values(data: Any, path: Path, at: Path = ()) -> Iterator[tuple[Path, Any]]:
    if not path:
        yield at, data
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(data, list):
            for i, item in enumerate(data):
                yield from _values(item, rest, (*at, str(i)))
    elif isinstance(data, dict) and head in data:
        yield from _values(data[head], rest, (*at, head))


class StrictSchema:
    """Validate a parsed JSON value against one of our schemas; raises ``error`` naming the path."""

    def __init__(self, name: str, *, what: str, error: type[FormatError]) -> None:
        schema = load_schema(name)
        inlined = inline_refs(schema, schema.get("$defs", {}))
        # Compiled to Python code, refs inlined: fastjsonschema formats a name per referenced array item
        # otherwise, which was most of its cost on a bundle's inclusion proof.
        self.compiled: Callable[[Any], Any] = fastjsonschema.compile(inlined)
        self._integers = tuple(_integer_paths(inlined))
        self._what = what
        self._error = error

    def __call__(self, data: Any) -> None:
        try:
            self.compiled(data)
        except fastjsonschema.JsonSchemaValueException as exc:
            where = "/".join(str(p) for p in exc.path[1:]) or "(top level)"
            raise self._error(
                f"{self._what} does not match the schema at {where}: {exc.message}",
                details={"path": where, "rule": exc.rule},
            ) from exc
        for path in self._integers:
            for at, value in _values(data, path):
                if type(value) is not int:  # a float the schema took for an integer (1.0, 1e2)
                    where = "/".join(at)
                    raise self._error(
                        f"{self._what} does not match the schema at {where}: "
                        f"{value!r} is not an integer literal (no fraction, no exponent)",
                        details={"path": where, "rule": "type"},
                    )
