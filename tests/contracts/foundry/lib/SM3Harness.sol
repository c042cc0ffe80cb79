// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SM3} from "../../../../contracts/SM3.sol";

/// The SM3 library behind an ABI, for the Python suite (tests/contracts/test_contract_sm3.py) to compare
/// with provenance.crypto.sm3 on each engine, and the precompile path with the Solidity one on our node.
contract SM3Harness {
    bool public immutable precompiled = SM3.precompileWorks();

    function hash(bytes calldata data) external pure returns (bytes32) {
        return SM3.hash(data);
    }

    function node(bytes32 left, bytes32 right) external pure returns (bytes32) {
        return SM3.node(left, right);
    }

    function nodeAnyway(bytes32 left, bytes32 right) external view returns (bytes32) {
        return SM3.node(left, right, precompiled);
    }
}
