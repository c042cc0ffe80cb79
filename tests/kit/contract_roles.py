"""The check every contract's role tests make: a function sent from an account of another role reverts."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount

from tests.kit.contracts import Chain


def unauthorized(chain: Chain, fn: Any, who: LocalAccount, role: int) -> None:
    """``fn`` sent from ``who`` reverts ``Unauthorized`` naming the account and the role ``fn`` needs."""
    with chain.reverts("Unauthorized") as info:
        chain.tx(fn, who)
    assert info.value.details["args"] == [who.address, role]
