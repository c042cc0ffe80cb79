"""The gas-network domain as verifiers and auditors see it (燃气网络: 区块链、物联网技术在燃气网络中的应用):
readings of gas sources, pipeline pressure and flow sensors and customer meters, signed once per batch by
the gas utility's data logger (``gas.batch``); ``GasNetwork.anchorBatch`` anchors each batch's root, which
``provenance audit batches`` checks against the logged batches."""

from __future__ import annotations

from adapters.batch.spec import anchored_roots
from provenance.domains import DomainSpec

BATCH = "gas.batch"
KINDS = (BATCH,)
CONTRACT = "GasNetwork"
ROLE = "gas_utility"

DOMAIN = DomainSpec(
    name="gas",
    roles={BATCH: frozenset({ROLE})},
    roots=(anchored_roots(CONTRACT, BATCH),),
)
