// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SM3} from "./SM3.sol";

/// RFC 9162 §2.1.4.2 consistency-proof verification over SM3 node hashes, the twin of
/// provenance.merkle.verify_consistency (the proofs the gateway serves at /api/v1/proofs/consistency).
library Rfc9162 {
    /// Whether `proof` shows that the tree (size2, root2) extends the tree (size1, root1), 0 < size1 < size2.
    /// `precompiled`: hash through the node's SM3 precompile (see SM3.node).
    function consistent(
        uint256 size1,
        uint256 size2,
        bytes32 root1,
        bytes32 root2,
        bytes32[] calldata proof,
        bool precompiled
    ) internal view returns (bool) {
        if (size1 == 0 || size1 >= size2 || proof.length == 0) return false;
        uint256 fn = size1 - 1;
        uint256 sn = size2 - 1;
        // When size1 is a power of two the old root is itself a node of the new tree: it seeds the path.
        bool seeded = size1 & fn == 0;
        bytes32 fr = seeded ? root1 : proof[0];
        uint256 i = seeded ? 0 : 1;
        bytes32 sr = fr;
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        for (; i < proof.length; i++) {
            if (sn == 0) return false; // longer than the tree is deep
            bytes32 c = proof[i];
            if (fn & 1 == 1 || fn == sn) {
                fr = SM3.node(c, fr, precompiled);
                sr = SM3.node(c, sr, precompiled);
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                sr = SM3.node(sr, c, precompiled);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr == root1 && sr == root2;
    }
}
