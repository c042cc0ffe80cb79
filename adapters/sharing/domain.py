"""The data-sharing domain as verifiers and auditors see it: who records which kind, which events its
contract (``DataSharing``) emits for which kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from provenance.domains import DomainSpec, EventSpec

if TYPE_CHECKING:  # annotations only
    from adapters.abc import State

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
    """The request's workflow state key. Case does not make another id (demo-req-1 is DEMO-REQ-1, as rx
    settlement ids): ids are ASCII (ID_PATTERN), upper-cased; ``spelled`` holds a record to one spelling."""
    return f"request:{request_id.upper()}"


def dataset_key(dataset: str) -> str:
    """A dataset's workflow state key: its owner, classification, openings, inputs and outputs; upper-cased
    as a request's (Demo-Census is demo-census: another organisation's look-alike is DATASET_EXISTS)."""
    return f"dataset:{dataset.upper()}"


def settlement_key(settlement_id: str) -> str:
    """A settlement's workflow state key: pending until countersigned, then settled; upper-cased as a
    request's."""
    return f"settlement:{settlement_id.upper()}"


def spelled(state: State | None, held: str | None, given: str) -> State | None:
    """The state of an id as a record naming it sees it: None where the id was made in another case (the
    chain keys the id as spelled, so demo-req-1 names no request there). ``held`` is the state's spelling
    (None: a state kept before spellings were, taken as the record's)."""
    return state if state is None or held is None or held == given else None


def dataset_state(states: Mapping[str, State | None], dataset: str) -> State | None:
    """The state of the dataset a record names (not one that makes it): None if made in another case."""
    state = states[dataset_key(dataset)]
    return spelled(state, state.data.get("dataset") if state is not None else None, dataset)


def request_state(states: Mapping[str, State | None], request_id: str) -> State | None:
    """The state of the request a record names (not one that makes it): None if made in another case."""
    state = states[state_key(request_id)]
    held = state.data.get("request_facts", {}).get("request_id") if state is not None else None
    return spelled(state, held, request_id)
