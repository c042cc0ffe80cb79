"""Organisations and their SM2 keys from OrgRegistry, cached (in the cache the domains' chain lookups share:
an event of OrgRegistry or of a contract a domain watches invalidates both)."""

from __future__ import annotations

from gateway.errors import KeyNotValid, KeyRevoked, OrgUnknown
from gateway.services.chain import ReadCache
from gateway.services.ledger import Ledger
from provenance.crypto import SM2PublicKey
from provenance.errors import SignatureInvalid
from provenance.orgs import OrgEntry, OrgKey
from provenance.records import Envelope
from provenance.timestamps import format_rfc3339, parse_timestamp


class OrgDirectory:
    """Cached ``OrgRegistry`` reads plus the signature check against the keys valid at a record's time."""

    def __init__(self, ledger: Ledger, cache: ReadCache) -> None:
        self._ledger = ledger
        self.cache = cache  # shared with the domains' chain lookups: one invalidation drops both

    def get(self, org: str) -> OrgEntry | None:
        """The organisation (None if unregistered); read through the cache."""
        return self.cache.get(("org", org), lambda: self._ledger.org(org))

    def org_ids(self) -> list[str]:
        """Every registered organisation id, read through the cache like :meth:`get`."""
        return list(self.cache.get(("org-ids",), self._ledger.org_ids))

    def require(self, org: str) -> OrgEntry:
        """The organisation, active; ORG_UNKNOWN otherwise."""
        entry = self.get(org)
        if entry is None:
            raise OrgUnknown(f"organisation {org!r} is not registered in OrgRegistry", details={"org": org})
        if not entry.active:
            raise OrgUnknown(f"organisation {org!r} is suspended", details={"org": org, "active": False})
        return entry

    def invalidate(self) -> None:
        """Expire every cached organisation and chain lookup (an event arrived); kept only as a fallback."""
        self.cache.invalidate()

    def verify(self, org: OrgEntry, envelope: Envelope, signature: bytes) -> tuple[OrgKey, SM2PublicKey]:
        """The key that verifies the record and was valid at its time; raises the specific error otherwise."""
        at = parse_timestamp(envelope.timestamp)
        message = envelope.canonical()
        valid = org.keys_at(at)
        for k in valid:
            if _verifies(k.public_key, message, signature):
                return k, k.public_key
        for k in org.keys:
            if k in valid:
                continue
            if _verifies(k.public_key, message, signature):
                details = {"org": org.org_id, "key_index": k.index, "timestamp": envelope.timestamp}
                if k.revoked_at and at >= k.revoked_at:
                    details["revoked_at"] = format_rfc3339(k.revoked_at)
                    raise KeyRevoked(
                        f"the signing key of {org.org_id!r} was revoked before the record's time",
                        details=details,
                    )
                raise KeyNotValid(
                    f"the signing key of {org.org_id!r} was not valid at the record's time", details=details
                )
        raise SignatureInvalid(
            f"the SM2 signature does not verify with any key of {org.org_id!r}", details={"org": org.org_id}
        )


def _verifies(pub: SM2PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        pub.verify(message, signature)
    except SignatureInvalid:
        return False
    return True
