"""High availability on PostgreSQL: two gateway processes on one database, the worker owner killed with
SIGKILL at random points under load, round after round.

After each round, from the outside (``tests.kit.procnet.Auditor``): the surviving instance took the workers
over (and only one instance ever says it owns them), every record that got a 202 from either instance has
exactly one leaf and is anchored, its bundle verifies (pinned keys, anchor on chain), consecutive anchored
checkpoints are consistent; at the end every workflow record reached its contract exactly once.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.ha import HaNet, fresh_database, takeover
from tests.kit.procnet import FAST_GATEWAY, Auditor, Load

pytestmark = pytest.mark.timeout(600)

PG_URL = os.environ.get("PROV_TEST_PG_URL")
RATE = 30.0
TAKEOVER_BOUND = 15.0  # s: a test bound on a loaded machine, not the figure (bench/soak.py measures it)


@pytest.fixture
def ha(tmp_path: Path) -> Iterator[HaNet]:
    if not PG_URL:
        pytest.skip("gateway high availability needs PostgreSQL: set PROV_TEST_PG_URL")
    net = HaNet(
        tmp_path,
        instances=2,
        gateway={**FAST_GATEWAY, "lease_poll": "0.25"},
        db_url=fresh_database(PG_URL, "ha"),
    )
    net.start()
    yield net
    net.stop()


def _settle(ha: HaNet, verified: set[str], load: Load) -> None:
    # A new auditor each round: its consistency proofs come from an instance alive now (a client of a
    # balancer); the bundles verified in earlier rounds are not fetched again.
    auditor = Auditor(ha)
    auditor.verified = verified
    load.pause()
    try:
        ids = load.accepted()
        state = auditor.wait_anchored(ids, timeout=90)
        auditor.check_log(state, ids)
        auditor.verify_bundles(ids)
        auditor.check_consistency()
    finally:
        load.resume()


@pytest.mark.crash_rounds(10)
def test_owner_kill_9_fails_over_to_the_other_instance(ha: HaNet, crash_rounds: int, crash_seed: int) -> None:
    rng = random.Random(crash_seed)
    verified: set[str] = set()
    # Exactly one of the two runs the workers from the start.
    first = ha.wait_owner(timeout=TAKEOVER_BOUND)
    assert ha.owners() == [first]
    load = Load(ha, rate=RATE, seed=crash_seed)
    load.start()
    times: list[float] = []
    try:
        for _ in range(crash_rounds):
            time.sleep(rng.uniform(0.2, 2.0))  # a random point of the sequencer, anchorer or chain caller
            killed, new, took = takeover(ha, timeout=TAKEOVER_BOUND)
            assert new != killed and new in ha.alive()
            times.append(took)
            # The killed one comes back (as the standby) while the auditor checks the round.
            back = threading.Thread(target=ha.start_instance, args=(killed,), daemon=True)
            back.start()
            _settle(ha, verified, load)
            back.join(timeout=120)
            assert ha.owners() == [new], "the lease stays with the new owner"
            assert (ha.health(killed) or {}).get("workers") == "standby"
        load.stop()
        ids = load.accepted()
        _settle(ha, verified, load)
        Auditor(ha).wait_workflow_confirmed(ids)
    finally:
        load.stop()
        with load.stats.lock:
            outcomes, n = dict(load.stats.outcomes), len(load.stats.accepted)
        print(
            f"\n[ha failover] rounds={len(times)} acknowledged={n} outcomes={outcomes} takeover s: "
            f"max={max(times, default=0):.2f} mean={sum(times) / max(1, len(times)):.2f} "
            f"all={[round(t, 2) for t in times]}"
        )
    assert len(times) == crash_rounds
