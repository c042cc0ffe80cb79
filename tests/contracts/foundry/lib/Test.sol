// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// The few forge cheatcodes these tests use (forge answers them at this fixed address). Declared here
/// rather than taken from forge-std: the build stays offline and the npm forge is the only Foundry piece.
interface Vm {
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    function prank(address sender) external;
    function warp(uint256 timestamp) external;
    function roll(uint256 blockNumber) external;
    function etch(address target, bytes calldata code) external;
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory);
    function expectRevert(bytes calldata revertData) external;
    function assume(bool condition) external pure;
    function addr(uint256 privateKey) external pure returns (address);
}

/// Base of the Foundry tests: forge's invariant target lists (the names forge looks for) and helpers.
abstract contract Test {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    address[] private _targets;

    /// Invariant runs call only these contracts (the handlers), never the contracts under test directly.
    function targetContracts() public view returns (address[] memory) {
        return _targets;
    }

    function targetContract(address target) internal {
        _targets.push(target);
    }

    /// `x` mapped into [lo, hi] (hi >= lo), uniformly enough for fuzzing.
    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }

    function fail(string memory why) internal pure {
        revert(why);
    }

    function check(bool ok, string memory why) internal pure {
        if (!ok) revert(why);
    }
}
