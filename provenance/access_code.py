"""Per-prescription access codes: printed on the patient's slip, shown to the pharmacy that fills it.

A code is 20 characters of Crockford base32 (100 bits from ``secrets``), printed in groups of four
(``7KQ2-M9XH-4TRB-WZ3C-8NDF``). The hospital's SDK makes it; the ``rx.issue`` payload carries only its
digest ``HMAC-SM3(key = the 20 characters, message = LABEL ‖ rx id)`` with
``LABEL = "shancheng-provenance/rx-access-code@v1" ‖ LF``, in a FHIR extension of the MedicationRequest
(``docs/formats.md``). The key is the code, so the digest says nothing without it; 100 bits cannot be
searched; the rx id in the message makes the digest of one code differ per prescription. A pharmacy
presents the code (``Provenance-Access-Code`` header) to the gateway, which recomputes the digest for the
prescription and compares.
"""

from __future__ import annotations

import copy
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provenance.crypto.sm3 import hmac_sm3
from provenance.errors import AccessCodeMalformed

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
LENGTH = 20  # 100 bits
GROUP = 4
LABEL = b"shancheng-provenance/rx-access-code@v1\n"
# The FHIR extension of the MedicationRequest that carries the digest (valueString, 64 lowercase hex).
FHIR_EXTENSION_URL = "urn:shancheng-provenance:fhir:rx-access-code-digest"
# The HTTP request header a reader presents the code in.
HEADER = "Provenance-Access-Code"
# The longest text read as a code (the header's and the submission field's bound): a code typed with dashes.
MAX_TEXT = 64

# Crockford's decoding: case-insensitive, O read as 0, I and L as 1; dashes and spaces only separate.
_DECODE = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


@dataclass(frozen=True, slots=True)
class AccessCode:
    """One prescription's access code; ``str()`` gives its printed form."""

    value: str = field(repr=False)  # the 20 characters, normalised: what the digest is keyed with

    def __post_init__(self) -> None:
        if len(self.value) != LENGTH or any(c not in ALPHABET for c in self.value):
            raise AccessCodeMalformed(
                f"an access code is {LENGTH} characters of {ALPHABET}", details={"field": "access_code"}
            )

    @classmethod
    def new(cls) -> AccessCode:
        """A fresh random code."""
        return cls("".join(secrets.choice(ALPHABET) for _ in range(LENGTH)))

    @classmethod
    def parse(cls, text: str) -> AccessCode:
        """A code as printed or typed (any case, with or without dashes or spaces; O→0, I/L→1)."""
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise AccessCodeMalformed("not an access code", details={"field": "access_code"})
        return cls(text.upper().translate(_DECODE))

    def __str__(self) -> str:
        return "-".join(self.value[i : i + GROUP] for i in range(0, LENGTH, GROUP))

    def digest(self, rx_id: str) -> str:
        """The digest the ``rx.issue`` payload carries for prescription ``rx_id`` (64 lowercase hex)."""
        return hmac_sm3(self.value.encode("ascii"), LABEL + rx_id.encode("utf-8")).hex()

    def matches(self, rx_id: str, digest: object) -> bool:
        """Whether ``digest`` (from an issue record) is this code's digest for ``rx_id``."""
        return isinstance(digest, str) and hmac.compare_digest(self.digest(rx_id), digest)

    @staticmethod
    def attached(medication_request: Mapping[str, Any]) -> bool:
        """Whether the MedicationRequest carries an access code's digest extension (checked in full by the
        gateway's adapter)."""
        extensions = medication_request.get("extension")
        return isinstance(extensions, list) and any(
            isinstance(e, Mapping) and e.get("url") == FHIR_EXTENSION_URL for e in extensions
        )

    def attach(self, medication_request: Mapping[str, Any], rx_id: str) -> dict[str, Any]:
        """A copy of the MedicationRequest carrying this code's digest (replacing any earlier one)."""
        resource = copy.deepcopy(dict(medication_request))
        extensions = [
            e
            for e in resource.get("extension") or []
            if not (isinstance(e, Mapping) and e.get("url") == FHIR_EXTENSION_URL)
        ]
        extensions.append({"url": FHIR_EXTENSION_URL, "valueString": self.digest(rx_id)})
        resource["extension"] = extensions
        return resource
