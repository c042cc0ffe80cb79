"""Gas of one ProvenanceLog anchor with its on-chain consistency check, by proof shape and engine.

For each (previous anchored size, new size): a fresh ProvenanceLog, the first anchor at the previous size,
then the measured anchor with the RFC 9162 proof between them (an honest tree from provenance.log.merkle).
On anvil (and Besu) the SM3 node hashes run in Solidity; on our node ProvenanceLog found the SM3
precompile at deployment and uses it. Prints a table (gas used by the second anchor's transaction, and
how many node hashes the check computed); ``--json`` for machines.

    PYTHONPATH=. .venv/bin/python bench/anchor_gas.py [--sizes 1000,100000,1000000] [--growth 1,100,10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from web3 import Web3

from devnet.anvil import start_anvil
from devnet.embedded import start_embedded
from devnet.engines import EngineHandle, test_accounts
from provenance.chain.contracts import ProposalKind, Role, deploy, org_id, propose, transact
from provenance.log.merkle import MerkleLog


def node_hashes(size1: int, size2: int, proof_len: int) -> int:
    """How many SM3 node hashes Rfc9162.consistent computes for this shape (a replay of its loop)."""
    fn, sn = size1 - 1, size2 - 1
    seeded = size1 & fn == 0
    while fn & 1:
        fn >>= 1
        sn >>= 1
    hashes = 0
    for _ in range(proof_len - (0 if seeded else 1)):
        if fn & 1 or fn == sn:
            hashes += 2
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            hashes += 1
        fn >>= 1
        sn >>= 1
    return hashes


def measure(engine: EngineHandle, tree: MerkleLog, cases: list[tuple[int, int]]) -> list[dict[str, Any]]:
    w3 = Web3(Web3.HTTPProvider(engine.rpc_url, request_kwargs={"timeout": 60}))
    admin, operator = engine.accounts[0], engine.accounts[1]
    registry = deploy(w3, "OrgRegistry", [admin.address], [1], 50, 50, sender=admin)
    propose(
        w3, registry, ProposalKind.ADD_ORG, org_id("log-op"), int(Role.LOG_OPERATOR), "log-op", sender=admin
    )
    propose(w3, registry, ProposalKind.ADD_ACCOUNT, org_id("log-op"), operator.address, sender=admin)
    rows = []
    for size1, size2 in cases:
        log = deploy(w3, "ProvenanceLog", registry.address, sender=admin)
        transact(w3, log.functions.anchor(size1, tree.root(size1), []), operator)
        proof = tree.consistency_proof(size1, size2)
        receipt = transact(w3, log.functions.anchor(size2, tree.root(size2), proof), operator)
        rows.append(
            {
                "engine": engine.name,
                "sm3": "precompile" if log.functions.sm3Precompiled().call() else "solidity",
                "size1": size1,
                "size2": size2,
                "proof_hashes": len(proof),
                "node_hashes": node_hashes(size1, size2, len(proof)),
                "gas": int(receipt["gasUsed"]),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--growth", default="1,100,10000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    growth = [int(g) for g in args.growth.split(",")]
    cases = [(s, s + g) for s in sizes for g in growth]
    tree = MerkleLog.in_memory()
    for i in range(max(s2 for _, s2 in cases)):
        tree.append(i.to_bytes(8, "big"))
    rows: list[dict[str, Any]] = []
    for name in ("anvil", "embedded"):
        if name == "anvil":
            engine = start_anvil()
        else:
            engine = start_embedded(
                data_dir=Path(tempfile.mkdtemp(prefix="anchor-gas-")), accounts=test_accounts(3)
            )
        try:
            rows += measure(engine, tree, cases)
        finally:
            engine.stop()
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'engine':9} {'sm3':10} {'size1':>9} {'size2':>9} {'proof':>5} {'nodes':>5} {'gas':>10}")
    for r in rows:
        print(
            f"{r['engine']:9} {r['sm3']:10} {r['size1']:>9} {r['size2']:>9} "
            f"{r['proof_hashes']:>5} {r['node_hashes']:>5} {r['gas']:>10,}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
