"""provenance/chain/trie.py builds the same transaction/receipt tries as py-evm, node for node."""

from __future__ import annotations

import random

import pytest
from eth.db.trie import _make_trie_root_and_nodes

from provenance.chain.trie import BLANK_ROOT_HASH, trie_root_and_nodes


# Sizes at the branch boundaries of rlp(index) keys (1 byte up to 127, 2 from 128, 3 from 256), and
# item lengths on both sides of 32 bytes (short leaves are embedded in their parent, not hashed).
@pytest.mark.parametrize("n", [0, 1, 2, 15, 16, 17, 127, 128, 129, 255, 256, 257, 1000])
def test_same_root_and_nodes_as_py_evm(n: int) -> None:
    rng = random.Random(n)
    items = tuple(rng.randbytes(rng.choice([1, 5, 30, 31, 32, 40, 120])) for _ in range(n))
    assert trie_root_and_nodes(items) == _make_trie_root_and_nodes.__wrapped__(items)


def test_blank_root_is_py_evms() -> None:
    from eth.constants import BLANK_ROOT_HASH as PY_EVM_BLANK_ROOT

    assert BLANK_ROOT_HASH == PY_EVM_BLANK_ROOT == trie_root_and_nodes(())[0]
