"""The data-sharing domain as verifiers and auditors see it: who records which kind, which events its
contract (``DataSharing``) emits for which kind."""

from __future__ import annotations

from provenance.domains import DomainSpec, EventSpec

REQUEST, CONSENT, ACCESS, REVOKE = "share.request", "share.consent", "share.access", "share.revoke_consent"
KINDS = (REQUEST, CONSENT, ACCESS, REVOKE)
CONTRACT = "DataSharing"
_VIA_REQUEST = ("Requested", "datasetId")  # a consent names its request; the request's event, the dataset

DOMAIN = DomainSpec(
    name="sharing",
    roles={
        REQUEST: frozenset({"data_user"}),
        ACCESS: frozenset({"data_user"}),
        CONSENT: frozenset({"data_owner"}),
        REVOKE: frozenset({"data_owner"}),
    },
    events=(
        EventSpec(CONTRACT, "Requested", REQUEST, "requesterOrg", "digest", "datasetId"),
        EventSpec(
            CONTRACT,
            "ConsentGranted",
            CONSENT,
            "ownerOrg",
            "digest",
            "requestId",
            scope="scopeDigest",
            subject_via=_VIA_REQUEST,
        ),
        EventSpec(
            CONTRACT, "ConsentWithdrawn", REVOKE, "ownerOrg", "digest", "requestId", subject_via=_VIA_REQUEST
        ),
        EventSpec(CONTRACT, "AccessRecorded", ACCESS, "requesterOrg", "accessDigest", "datasetId", "account"),
    ),
)


def state_key(request_id: str) -> str:
    """The request's workflow state key."""
    return f"request:{request_id}"
