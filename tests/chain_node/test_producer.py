"""Block timestamps against the wall clock: the bound a devnet and a production node run with (a block is
stamped at most ``max_clock_lead`` ahead of the node's clock, and waits rather than run ahead), and the
test chains' unbounded mode, whose clock runs a second ahead per block under a burst."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from devnet import engines
from devnet.embedded import free_port, init_genesis, start_embedded
from devnet.engines import EngineHandle
from tests.kit.node_probe import transfer

pytestmark = pytest.mark.embedded_only

SLACK = 0.05  # a stamp is checked against time.time() read after the block was sealed; this is clock jitter


def _transfer(h: EngineHandle, w3: Web3, sender: int, nonce: int) -> bytes:
    tx = transfer(h, to=h.accounts[0].address, nonce=nonce, value=1)
    return bytes(w3.eth.send_raw_transaction(h.accounts[sender].sign_transaction(tx).raw_transaction))


def _one_at_a_time(h: EngineHandle, w3: Web3, n: int) -> list[tuple[int, float]]:
    """``n`` transfers, each sent after the previous receipt: (block timestamp, wall clock at receipt)."""
    user = h.accounts[1]
    first = w3.eth.get_transaction_count(user.address, "pending")
    out = []
    for i in range(n):
        receipt = w3.eth.wait_for_transaction_receipt(_transfer(h, w3, 1, first + i), timeout=30)
        seen = time.time()
        out.append((int(w3.eth.get_block(receipt["blockNumber"])["timestamp"]), seen))
    return out


@pytest.fixture(scope="module")
def bounded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineHandle]:
    h = start_embedded(data_dir=tmp_path_factory.mktemp("bounded"), bounded_clock=True)
    yield h
    h.stop()


def test_a_burst_does_not_move_the_clock_ahead(bounded: EngineHandle) -> None:
    """Sends one at a time, then a stream: every block is stamped at most a second after the moment it
    was sealed, timestamps still rise strictly, and the stream shares blocks instead of a block each."""
    w3 = Web3(Web3.HTTPProvider(bounded.rpc_url))
    start = w3.eth.block_number
    stamps = _one_at_a_time(bounded, w3, 6)
    for stamp, seen in stamps:
        assert stamp <= seen + 1 + SLACK, (stamp, seen)
    user = bounded.accounts[2]
    first = w3.eth.get_transaction_count(user.address, "pending")
    hashes = [_transfer(bounded, w3, 2, first + i) for i in range(40)]
    receipts = [w3.eth.wait_for_transaction_receipt(x, timeout=30) for x in hashes]
    assert all(r["status"] == 1 for r in receipts)
    assert len({r["blockNumber"] for r in receipts}) <= 3  # 40 transactions, not 40 blocks
    blocks = [w3.eth.get_block(n) for n in range(start, w3.eth.block_number + 1)]
    times = [int(b["timestamp"]) for b in blocks]
    assert all(a < b for a, b in itertools.pairwise(times)), times
    assert times[-1] <= time.time() + 1 + SLACK
    info: Any = w3.provider.make_request("gm_nodeInfo", [])  # type: ignore[arg-type]
    assert info["result"]["maxClockLead"] == 1.0


def test_a_lone_send_after_a_quiet_second_is_mined_at_once(bounded: EngineHandle) -> None:
    """The bound holds back only blocks that come faster than one a second: after a quiet second the
    send is in a block when its hash comes back."""
    w3 = Web3(Web3.HTTPProvider(bounded.rpc_url))
    user = bounded.accounts[3]
    nonce = w3.eth.get_transaction_count(user.address, "pending")
    time.sleep(2.1)  # the head's stamp is now behind the clock by a second or more
    h = _transfer(bounded, w3, 3, nonce)
    assert w3.eth.get_transaction(h)["blockNumber"] is not None


def test_a_test_chain_runs_ahead_without_the_bound(node: EngineHandle, w3: Web3) -> None:
    """The same burst on the session's test chain (no bound): a block per transaction at once, each a
    second after its parent, so its clock runs ahead; what the bound prevents."""
    before = time.time()
    stamps = _one_at_a_time(node, w3, 8)
    took = time.time() - before
    if took > 4:
        pytest.skip(f"the machine took {took:.1f} s for 8 sends: too slow to tell the clocks apart")
    assert max(stamp - seen for stamp, seen in stamps) >= 3


def test_bad_clock_bound_is_refused(tmp_path: Path) -> None:
    init_genesis(tmp_path, engines.test_accounts(2))
    cmd = [sys.executable, "-m", "chain_node", "run", "--data-dir", str(tmp_path)]
    cmd += ["--rpc-port", str(free_port())]
    for value, expected in (("soon", "seconds or 'none'"), ("-1", "greater than or equal to 0")):
        done = subprocess.run(
            [*cmd, "--max-clock-lead", value], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2, done.stderr
        assert expected in done.stderr
