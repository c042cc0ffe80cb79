"""The data-sharing domain on chain: ``DataSharing`` holds the datasets and their owners, each request's
status (pending, consented, revoked) and the accesses recorded under a consent."""

from __future__ import annotations

from adapters.abc import ChainView
from adapters.sharing.domain import CONTRACT
from provenance.chain.contracts import chain_key

_STATUSES = (None, "pending", "consented", "revoked")


def request_key(request_id: str) -> bytes:
    return chain_key("share-request", request_id)


def request_status(chain: ChainView, request_id: str) -> str | None:
    """The DataSharing status of a request (pending, consented, revoked), None if the chain has none."""
    return _STATUSES[chain.call(CONTRACT, "requestOf", request_key(request_id))[0]]


def request_digest(chain: ChainView, request_id: str) -> str:
    """The digest of the record that made the request on chain, hex (zeros: none)."""
    return bytes(chain.call(CONTRACT, "requestOf", request_key(request_id))[3]).hex()


def dataset_owner(chain: ChainView, dataset: str) -> str | None:
    """The organisation that registered ``dataset`` in DataSharing, or None."""
    owner = bytes(chain.call(CONTRACT, "datasetOf", chain_key("dataset", dataset))[0]).rstrip(b"\0")
    return owner.decode("utf-8", "replace") if owner else None
