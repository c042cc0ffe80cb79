// SPDX-License-Identifier: Apache-2.0
// Test-only contract for the embedded node's tests and bench/chain.py (not part of contracts/).
// Compiled with devnet/solc.py's pinned solc and SETTINGS into tests/assets/NodeProbe.json by
// `python tests/chain_node/build_probe.py`.
pragma solidity 0.8.28;

contract NodeProbe {
    error TooSmall(uint256 got, uint256 min);

    event Anchored(uint256 indexed size, bytes32 indexed root, address indexed by, uint256 seq);

    uint256 public lastSize;
    bytes32 public lastRoot;
    uint256 public count;
    /// Stands in for OrgRegistry.isPermitted(address) when a test genesis names this contract.
    mapping(address => bool) public isPermitted;

    /// An anchor-like write: two storage slots, a counter, and an event with indexed topics.
    function anchor(uint256 size, bytes32 root) external {
        lastSize = size;
        lastRoot = root;
        count += 1;
        emit Anchored(size, root, msg.sender, count);
    }

    /// Many events in one transaction (fills a log index quickly for getLogs benchmarks).
    function emitMany(uint256 from, uint256 n, bytes32 root) external {
        for (uint256 i = 0; i < n; i++) {
            emit Anchored(from + i, root, msg.sender, i);
        }
    }

    /// Two writes of one slot: the second SSTORE is warm and cheap, so with exactly the gas it uses the
    /// transaction would reach it with under 2300 gas left, which EIP-2200 refuses (estimates must see it).
    function rewrite(uint256 v) external {
        lastSize = v;
        lastSize = v + 1;
    }

    /// Spends more when given more: an estimate must not trust the gas of one run.
    function spendIfRich(uint256 n) external {
        if (gasleft() > 200_000) {
            for (uint256 i = 0; i < n; i++) {
                count += 1;
            }
        }
        lastRoot = bytes32(count);
    }

    function setPermitted(address who, bool ok) external {
        isPermitted[who] = ok;
    }

    function failCustom(uint256 x) external pure {
        revert TooSmall(x, 10);
    }

    function failString() external pure {
        require(false, "probe: nope");
    }

    /// SM3 through the node's precompile at 0x…5001.
    function sm3(bytes calldata data) external view returns (bytes32) {
        (bool ok, bytes memory out) = address(0x5001).staticcall(data);
        require(ok && out.length == 32, "no sm3 precompile");
        return bytes32(out);
    }

    /// SM2 verification through the node's precompile at 0x…5002: pub(64) ‖ r ‖ s ‖ message.
    function sm2Verify(bytes calldata input) external view returns (bool) {
        (bool ok, bytes memory out) = address(0x5002).staticcall(input);
        require(ok && out.length == 32, "no sm2 precompile");
        return uint256(bytes32(out)) == 1;
    }
}
