"""Hypothesis settings of the fuzzers of this folder: a fixed number of examples, derandomised (the same cases
every run, so a failure in CI replays locally), no example database and no time limits."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )


def json_paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, as the keys and indexes leading there (the value itself first: ``()``)."""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    return [at, *(p for key, child in children for p in json_paths(child, (*at, key)))]
