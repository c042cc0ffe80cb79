"""Per-organisation API tokens ``<id>.<secret>``: SHA-256 of the secret stored, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from pathlib import Path

from sqlmodel import select

from gateway.core.db import Database
from gateway.errors import TokenInvalid
from gateway.models import ApiToken
from provenance.files import write_private

TOKEN_PREFIX = "spt_"  # noqa: S105  (a prefix that makes leaked tokens greppable, not a secret)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def mint_token(db: Database, org: str, *, label: str = "") -> str:
    """Create a token for ``org`` and return it (the only time the secret is visible)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    with db.write() as s:
        s.add(
            ApiToken(
                id=token_id, org_id=org, label=label, secret_sha256=_hash(secret), created_at=time.time()
            )
        )
    return f"{TOKEN_PREFIX}{token_id}.{secret}"


def rotate_token(db: Database, org: str, *, label: str = "") -> str:
    """Mint a new token for ``org`` and revoke every older one."""
    new = mint_token(db, org, label=label)
    new_id = new[len(TOKEN_PREFIX) :].split(".", 1)[0]
    revoke_tokens(db, org, keep=new_id)
    return new


def revoke_tokens(db: Database, org: str, *, keep: str | None = None) -> int:
    """Revoke the tokens of ``org`` (except ``keep``); returns how many."""
    now = time.time()
    n = 0
    with db.write() as s:
        for row in s.exec(select(ApiToken).where(ApiToken.org_id == org, ApiToken.revoked_at == None)):  # noqa: E711
            if row.id != keep:
                row.revoked_at = now
                s.add(row)
                n += 1
    return n


def write_token_file(path: Path, token: str) -> None:
    """Write a token to a new file readable by its owner only (0600)."""
    write_private(path, (token + "\n").encode("ascii"))


class TokenVerifier:
    """Resolves bearer tokens to organisations, with a short cache so most requests skip the database."""

    def __init__(self, db: Database, *, ttl: float) -> None:
        self._db = db
        self._ttl = ttl
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def org_of(self, token: str) -> str:
        """The organisation a token belongs to; TokenInvalid if unknown, malformed or revoked."""
        now = time.monotonic()
        digest = _hash(token)  # cache key: never keep raw tokens in memory longer than needed
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        if not token.startswith(TOKEN_PREFIX) or "." not in token:
            raise TokenInvalid("malformed API token")
        token_id, secret = token[len(TOKEN_PREFIX) :].split(".", 1)
        with self._db.session() as s:
            row = s.get(ApiToken, token_id)
        if (
            row is None
            or row.revoked_at is not None
            or not hmac.compare_digest(row.secret_sha256, _hash(secret))
        ):
            raise TokenInvalid("unknown or revoked API token")
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (row.org_id, now + self._ttl)
        return row.org_id

    def forget(self) -> None:
        """Drop the cache (after a revocation, so it takes effect at once in this process)."""
        with self._lock:
            self._cache.clear()
