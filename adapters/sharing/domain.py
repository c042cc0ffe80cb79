"""The data-sharing domain as verifiers and auditors see it: who records which kind, which events its
contract (``DataSharing``) emits for which kind."""

from __future__ import annotations

from provenance.domains import DomainSpec, EventSpec

REQUEST, CONSENT, ACCESS, REVOKE = "share.request", "share.consent", "share.access", "share.revoke_consent"
COLLECTED, STORED, OPENED, DERIVED = "data.collected", "data.stored", "data.opened", "data.derived"
SETTLED, COUNTERSIGNED = "data.settled", "data.countersigned"
LIFE_KINDS = (COLLECTED, STORED, OPENED, DERIVED, SETTLED, COUNTERSIGNED)
KINDS = (REQUEST, CONSENT, ACCESS, REVOKE, *LIFE_KINDS)
_EITHER = frozenset({"data_owner", "data_user"})
CONTRACT = "DataSharing"
_VIA_REQUEST = ("Requested", "datasetId")  # a consent names its request; the request's event, the dataset

DOMAIN = DomainSpec(
    name="sharing",
    roles={
        REQUEST: frozenset({"data_user"}),
        ACCESS: frozenset({"data_user"}),
        CONSENT: frozenset({"data_owner"}),
        REVOKE: frozenset({"data_owner"}),
        # A dataset's life: an owner collects; whoever owns a dataset (a derived one: its analyst) stores
        # and opens it; either side of a sharing relation proposes or countersigns its settlement.
        COLLECTED: frozenset({"data_owner"}),
        STORED: _EITHER,
        OPENED: _EITHER,
        DERIVED: _EITHER,
        SETTLED: _EITHER,
        COUNTERSIGNED: _EITHER,
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
        # A dataset's life where several organisations agree (DatasetRegistered is not here: the devnet
        # registers its datasets without records).
        EventSpec(CONTRACT, "DatasetOpened", OPENED, "ownerOrg", "digest", "datasetId"),
        EventSpec(CONTRACT, "DatasetDerived", DERIVED, "analystOrg", "digest", "datasetId"),
        EventSpec(
            CONTRACT,
            "SettlementProposed",
            SETTLED,
            "proposerOrg",
            "digest",
            "requestId",
            scope="termsDigest",
            subject_via=_VIA_REQUEST,
        ),
        EventSpec(CONTRACT, "SettlementCountersigned", COUNTERSIGNED, "counterpartOrg", "digest"),
    ),
)


def state_key(request_id: str) -> str:
    """The request's workflow state key."""
    return f"request:{request_id}"


def dataset_key(dataset: str) -> str:
    """A dataset's workflow state key: its owner, classification, openings, inputs and outputs."""
    return f"dataset:{dataset}"


def settlement_key(settlement_id: str) -> str:
    """A settlement's workflow state key: pending until countersigned, then settled."""
    return f"settlement:{settlement_id}"
