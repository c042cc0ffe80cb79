// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// SM3 (GB/T 32905-2016) in Solidity, and the RFC 9162 node hash over it, for engines without our node's
/// SM3 precompile (anvil, Besu). The state is kept as two 128-bit words, A‖B‖C‖D and E‖F‖G‖H, because a
/// round only makes A and E new and shifts the rest; that keeps the Yul below the stack limit.
/// Scratch memory past the free memory pointer holds the padded message and the 68 expanded words; nothing
/// is allocated, so hashing many nodes in one call does not grow memory.
// slither-disable-start assembly,low-level-calls: 32-bit word arithmetic and a raw precompile are the point here
library SM3 {
    /// The embedded node's SM3 precompile (chain_node/precompiles.py); an empty account elsewhere.
    address internal constant PRECOMPILE = address(0x5001);

    /// SM3 of `data`.
    function hash(bytes memory data) internal pure returns (bytes32 digest) {
        uint256 msgPtr;
        uint256 padded;
        assembly ("memory-safe") {
            let len := mload(data)
            msgPtr := mload(0x40)
            // 0x80, zeros, then the bit length in the last 8 bytes of the last 64-byte block.
            padded := and(add(len, 72), not(63))
            for { let i := len } lt(i, padded) { i := add(i, 32) } { mstore(add(msgPtr, i), 0) }
            mcopy(msgPtr, add(data, 0x20), len)
            mstore8(add(msgPtr, len), 0x80)
            let last := add(msgPtr, sub(padded, 32))
            mstore(last, or(mload(last), shl(3, len)))
        }
        digest = _digestPadded(msgPtr, padded);
    }

    /// RFC 9162 interior node hash SM3(0x01 ‖ left ‖ right), in Solidity.
    function node(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        uint256 msgPtr;
        assembly ("memory-safe") {
            msgPtr := mload(0x40)
            // 65 bytes pad to two blocks: 0x01 ‖ left ‖ right ‖ 0x80 ‖ zeros ‖ uint64(520).
            mstore(msgPtr, 0)
            mstore8(msgPtr, 0x01)
            mstore(add(msgPtr, 1), left)
            mstore(add(msgPtr, 33), right)
            mstore(add(msgPtr, 65), shl(248, 0x80))
            mstore(add(msgPtr, 96), 520)
        }
        return _digestPadded(msgPtr, 128);
    }

    /// The node hash through the precompile when `precompiled` (and it answers), else in Solidity.
    function node(bytes32 left, bytes32 right, bool precompiled) internal view returns (bytes32 h) {
        if (precompiled) {
            bool answered;
            assembly ("memory-safe") {
                let p := mload(0x40)
                mstore8(p, 0x01)
                mstore(add(p, 1), left)
                mstore(add(p, 33), right)
                answered := and(staticcall(gas(), 0x5001, p, 65, 0, 32), eq(returndatasize(), 32))
                h := mload(0)
            }
            if (answered) return h;
        }
        return node(left, right);
    }

    /// Whether the precompile at PRECOMPILE computes SM3 (checked on the GB/T 32905 "abc" example), so a
    /// chain with something else at that address never has its answers trusted.
    function precompileWorks() internal view returns (bool) {
        (bool ok, bytes memory out) = PRECOMPILE.staticcall("abc");
        return ok && out.length == 32
            && bytes32(out) == 0x66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0;
    }

    /// The digest of a padded message at `msgPtr` (`padded` bytes, a multiple of 64). Hot code, so the
    /// helpers are written out: a 32-bit rotation is and(or(shl(n, x), shr(32 - n, x)), M) of a clean
    /// word. Sums and bitwise mixes may carry garbage above bit 31 (words are read from the packed state
    /// by a shift alone), because only their low 32 bits are kept, by one mask at the end.
    function _digestPadded(uint256 msgPtr, uint256 padded) private pure returns (bytes32 digest) {
        assembly ("memory-safe") {
            // W_0..W_67 of one 64-byte block, one 32-byte memory word each.
            function expand(blk, w) {
                for { let j := 0 } lt(j, 16) { j := add(j, 1) } {
                    mstore(add(w, shl(5, j)), shr(224, mload(add(blk, shl(2, j)))))
                }
                let m := 0xffffffff
                for { let p := add(w, 512) } lt(p, add(w, 2176)) { p := add(p, 32) } {
                    // W_j = P1(W_j-16 ^ W_j-9 ^ (W_j-3 <<< 15)) ^ (W_j-13 <<< 7) ^ W_j-6
                    let x := mload(sub(p, 96))
                    let t := and(xor(xor(mload(sub(p, 512)), mload(sub(p, 288))), or(shl(15, x), shr(17, x))), m)
                    x := mload(sub(p, 416))
                    // P1(t) = t ^ (t <<< 15) ^ (t <<< 23)
                    t := xor(xor(t, or(shl(15, t), shr(17, t))), or(shl(23, t), shr(9, t)))
                    mstore(p, and(xor(xor(t, or(shl(7, x), shr(25, x))), mload(sub(p, 192))), m))
                }
            }
            // The 64 rounds on x = A‖B‖C‖D, y = E‖F‖G‖H (128 bits each), then the feed-forward.
            function compress(x, y, w) -> x2, y2 {
                let m := 0xffffffff
                x2 := x
                y2 := y
                let tj := 0x79cc4519 // rotl(T_j, j mod 32), rotated on by one bit a round
                for { let p := w } lt(p, add(w, 512)) { p := add(p, 32) } {
                    let a := shr(96, x2)
                    let a12 := and(or(shl(12, a), shr(20, a)), m)
                    let ss1 := and(add(add(a12, shr(96, y2)), tj), m)
                    ss1 := and(or(shl(7, ss1), shr(25, ss1)), m)
                    let wj := mload(p)
                    // FF = GG = X ^ Y ^ Z for j < 16; D and H are the low words of x2 and y2
                    let tt1 := add(add(xor(xor(a, shr(64, x2)), shr(32, x2)), x2), xor(ss1, a12))
                    tt1 := and(add(tt1, xor(wj, mload(add(p, 128)))), m)
                    let e := shr(96, y2)
                    let tt2 := and(add(add(add(xor(xor(e, shr(64, y2)), shr(32, y2)), y2), ss1), wj), m)
                    // B' = A, C' = B <<< 9, D' = C; F' = E, G' = F <<< 19, H' = G; E' = P0(TT2)
                    let b := and(shr(64, x2), m)
                    x2 := or(shl(96, tt1), xor(shr(32, x2), shl(32, xor(b, and(or(shl(9, b), shr(23, b)), m)))))
                    let f := and(shr(64, y2), m)
                    tt2 := and(xor(xor(tt2, or(shl(9, tt2), shr(23, tt2))), or(shl(17, tt2), shr(15, tt2))), m)
                    y2 := or(shl(96, tt2), xor(shr(32, y2), shl(32, xor(f, and(or(shl(19, f), shr(13, f)), m)))))
                    tj := and(or(shl(1, tj), shr(31, tj)), m)
                }
                tj := 0x9d8a7a87 // rotl(0x7a879d8a, 16)
                for { let p := add(w, 512) } lt(p, add(w, 2048)) { p := add(p, 32) } {
                    let a := shr(96, x2)
                    let a12 := and(or(shl(12, a), shr(20, a)), m)
                    let ss1 := and(add(add(a12, shr(96, y2)), tj), m)
                    ss1 := and(or(shl(7, ss1), shr(25, ss1)), m)
                    let wj := mload(p)
                    // FF = majority(A, B, C) = (A & (B | C)) | (B & C)
                    let b := shr(64, x2)
                    let c := shr(32, x2)
                    let tt1 := add(add(or(and(a, or(b, c)), and(b, c)), x2), xor(ss1, a12))
                    tt1 := and(add(tt1, xor(wj, mload(add(p, 128)))), m)
                    // GG = (E & F) | (~E & G) = G ^ (E & (F ^ G))
                    let g := shr(32, y2)
                    let tt2 := xor(g, and(shr(96, y2), xor(shr(64, y2), g)))
                    tt2 := and(add(add(add(tt2, y2), ss1), wj), m)
                    b := and(b, m)
                    x2 := or(shl(96, tt1), xor(c, shl(32, xor(b, and(or(shl(9, b), shr(23, b)), m)))))
                    let f := and(shr(64, y2), m)
                    tt2 := and(xor(xor(tt2, or(shl(9, tt2), shr(23, tt2))), or(shl(17, tt2), shr(15, tt2))), m)
                    y2 := or(shl(96, tt2), xor(g, shl(32, xor(f, and(or(shl(19, f), shr(13, f)), m)))))
                    tj := and(or(shl(1, tj), shr(31, tj)), m)
                }
                x2 := xor(x2, x)
                y2 := xor(y2, y)
            }

            let w := add(msgPtr, padded)
            let x := 0x7380166f4914b2b9172442d7da8a0600
            let y := 0xa96f30bc163138aae38dee4db0fb0e4e
            for { let off := 0 } lt(off, padded) { off := add(off, 64) } {
                expand(add(msgPtr, off), w)
                x, y := compress(x, y, w)
            }
            digest := or(shl(128, x), y)
        }
    }
}
// slither-disable-end assembly,low-level-calls
