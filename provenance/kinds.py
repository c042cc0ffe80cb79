"""Which organisation roles may record which kind: one table for the gateway and every verifier.

The table is data (``schemas/kind-roles.json``) so that the /verify page bundles the same file at build
time; the gateway refuses a submission outside it (``ROLE_FORBIDDEN``) and a verifier with pinned roles
refuses a bundle outside it, so a record the gateway would never have accepted never verifies either.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

from provenance.types import Role


def _load() -> Mapping[str, frozenset[Role]]:
    text = resources.files("provenance.schemas").joinpath("kind-roles.json").read_text("utf-8")
    table = {k: v for k, v in json.loads(text).items() if not k.startswith("$")}
    return MappingProxyType({k: frozenset(Role[r.upper()] for r in roles) for k, roles in table.items()})


ROLES_BY_KIND: Mapping[str, frozenset[Role]] = _load()


def role_may_record(role: str, kind: str) -> bool:
    """Whether an organisation of ``role`` (lowercase, as in a trust file) may record ``kind``."""
    roles = ROLES_BY_KIND.get(kind)
    return roles is not None and any(r.name.lower() == role for r in roles)
