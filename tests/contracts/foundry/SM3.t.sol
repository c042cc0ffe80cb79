// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SM3} from "../../../contracts/SM3.sol";
import {Test} from "./lib/Test.sol";

/// The Solidity SM3 on the GB/T 32905-2016 examples and on padding edges (the Python suite compares it
/// with provenance.crypto.sm3 on random inputs: tests/contracts/test_contract_sm3.py).
contract SM3Test is Test {
    function test_gbt32905_example1_abc() public pure {
        check(SM3.hash("abc") == 0x66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0, "abc");
    }

    function test_gbt32905_example2_64_bytes() public pure {
        bytes memory m = "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd";
        check(SM3.hash(m) == 0xdebe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732, "abcd*16");
    }

    function test_empty_string() public pure {
        check(SM3.hash("") == 0x1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b, "empty");
    }

    /// The node hash is SM3(0x01 ‖ left ‖ right), whatever the two halves.
    function testFuzz_node_is_hash_of_prefixed_pair(bytes32 left, bytes32 right) public pure {
        check(SM3.node(left, right) == SM3.hash(abi.encodePacked(bytes1(0x01), left, right)), "node");
    }

    /// Without a precompile at 0x5001 (forge's EVM has none) the precompiled path falls back to Solidity.
    function testFuzz_node_falls_back_without_precompile(bytes32 left, bytes32 right) public view {
        check(SM3.node(left, right, true) == SM3.node(left, right), "fallback");
    }

    /// Hashing leaves the caller's memory as it was (the scratch space lies past the free pointer).
    function testFuzz_hash_does_not_touch_caller_memory(bytes memory data) public pure {
        bytes memory copy = bytes.concat(data);
        SM3.hash(data);
        check(keccak256(copy) == keccak256(data), "memory");
    }
}
