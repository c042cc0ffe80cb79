// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SM3} from "../../../../contracts/SM3.sol";

/// Reference RFC 9162 trees over SM3 node hashes, written from the RFC's recursion (as in
/// provenance/merkle.py), independent of the contract's proof check. Tree 0 is the honest log; a fork
/// shares the honest leaves below its fork point and has leaves of its own from there on, so two trees
/// agree exactly on their common prefix. Complete subtrees are stored as leaves arrive: roots and proofs
/// cost O(log n) hashes.
contract RefTrees {
    uint256 public constant NO_FORK = type(uint256).max;

    uint256 public count = 1;
    mapping(uint256 => uint256) public forkAt;
    mapping(uint256 => uint256) public size;
    mapping(uint256 => mapping(uint256 => mapping(uint256 => bytes32))) internal nodes; // tree, level, index

    constructor() {
        forkAt[0] = NO_FORK;
    }

    /// A new tree that leaves the honest one at `point`; returns its id.
    function fork(uint256 point) external returns (uint256 t) {
        t = count++;
        forkAt[t] = point;
    }

    /// How many first leaves trees `a` and `b` share.
    function commonPrefix(uint256 a, uint256 b) external view returns (uint256) {
        if (a == b) return NO_FORK;
        return forkAt[a] < forkAt[b] ? forkAt[a] : forkAt[b];
    }

    function grow(uint256 t, uint256 n) external {
        while (size[t] < n) {
            uint256 index = size[t]++;
            bytes32 node = keccak256(abi.encode(index < forkAt[t] ? 0 : t, index)); // the leaf hash
            nodes[t][0][index] = node;
            (uint256 level, uint256 i) = (0, index);
            while (i & 1 == 1) {
                node = SM3.node(nodes[t][level][i - 1], node);
                level++;
                i >>= 1;
                nodes[t][level][i] = node;
            }
        }
    }

    /// MTH of the first n leaves (n >= 1, grown).
    function root(uint256 t, uint256 n) external view returns (bytes32) {
        return _range(t, 0, n);
    }

    /// RFC 9162 §2.1.4.1 PROOF(m, D[n]), 0 < m < n: SUBPROOF(m, D[n], true), leaf-side first.
    function consistencyProof(uint256 t, uint256 m, uint256 n) external view returns (bytes32[] memory proof) {
        bytes32[] memory rev = new bytes32[](128);
        uint256 len;
        (uint256 start, uint256 end, bool whole) = (0, n, true);
        while (true) {
            uint256 k = end - start;
            if (m == k) {
                if (!whole) rev[len++] = _range(t, start, end);
                break;
            }
            uint256 split = _split(k);
            if (m <= split) {
                rev[len++] = _range(t, start + split, end);
                end = start + split;
            } else {
                rev[len++] = _range(t, start, start + split);
                (start, m, whole) = (start + split, m - split, false);
            }
        }
        proof = new bytes32[](len);
        for (uint256 i = 0; i < len; i++) {
            proof[i] = rev[len - 1 - i];
        }
    }

    function _range(uint256 t, uint256 start, uint256 end) private view returns (bytes32) {
        uint256 n = end - start;
        if (n & (n - 1) == 0 && start % n == 0) {
            uint256 level;
            while ((uint256(1) << level) < n) level++;
            return nodes[t][level][start / n];
        }
        uint256 k = _split(n);
        return SM3.node(_range(t, start, start + k), _range(t, start + k, end));
    }

    /// The largest power of two below n (n >= 2).
    function _split(uint256 n) private pure returns (uint256 k) {
        k = 1;
        while (k << 1 < n) k <<= 1;
    }
}
