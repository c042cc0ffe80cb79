"""Demo records of a new devnet, so `make run` shows something to look up: each registered domain records
its own (``Workflow.demo``: the sharing domain, one dataset's whole life as ``dataset:demo-census``)
through one :class:`DemoWriter`, how any demo record reaches the devnet's gateway, signed by the organisation
that acts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from adapters import registry
from provenance.client import Client
from provenance.errors import ProvenanceError

_WAIT = 30.0  # seconds for a record's contract call to be mined


class DemoWriter:
    """Submits demo records through the devnet's gateway, each signed by the organisation that acts (its
    devnet key and token); a record a later one names is waited for until its contract call is mined."""

    def __init__(self, root: Path, gateway: str) -> None:
        self._root = root
        self._gateway = gateway
        self._clients: dict[str, Client] = {}
        self._stack = ExitStack()
        self._submitted_by: dict[str, str] = {}

    def __enter__(self) -> DemoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _client(self, org: str) -> Client:
        if org not in self._clients:
            client = Client.devnet(org, root=self._root, gateway=self._gateway)
            self._clients[org] = self._stack.enter_context(client)
        return self._clients[org]

    def put(
        self, org: str, kind: str, subject: str, payload: Mapping[str, Any], *, mined: bool = False
    ) -> str:
        """Sign and submit a record of ``org``; its id. ``mined``: wait until its contract call is mined."""
        client = self._client(org)
        receipt = client.submit(client.sign(kind=kind, subject=subject, payload=payload), payload)
        if mined:  # what a later record names must be on chain first (a request, its dataset)
            deadline = time.monotonic() + _WAIT
            while client.record(receipt.id)["chain_status"] not in ("confirmed", "rejected"):
                if time.monotonic() > deadline:
                    raise ProvenanceError(f"{kind} {receipt.id} not on chain after {_WAIT:.0f} s")
                time.sleep(0.2)
        self._submitted_by[receipt.id] = org
        return receipt.id

    def payload_digest(self, record_id: str) -> str:
        """The payload digest of a record put here, as the gateway holds it (read by its submitter)."""
        digest: str = self._client(self._submitted_by[record_id]).record(record_id)["payload_digest"]
        return digest


def seed(root: Path, gateway: str, on_step: Callable[[str], None]) -> None:
    """Record each registered domain's demo data through ``gateway`` (the devnet's, first run)."""
    with DemoWriter(root, gateway) as writer:
        for workflow in registry.workflows():
            on_step(f"recording the {workflow.domain.name} domain's demo records")
            subject = workflow.demo(writer)
            if subject is not None:
                on_step(f"  look it up as {subject}")
