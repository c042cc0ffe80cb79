// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, OrgGated, Role} from "./IOrgRegistry.sol";

/// Anchors (tree size, root) of the SM3 Merkle log, from log_operator accounts only.
/// Sizes strictly increase; a size, once anchored, keeps its root forever. Re-anchoring the exact same
/// (size, root) is a no-op (no event), so an anchoring worker can retry after a lost receipt.
contract ProvenanceLog is OrgGated {
    struct Anchor {
        uint64 treeSize;
        bytes32 root;
        address operator;
        uint64 timestamp;
        uint64 blockNumber;
    }

    error SizeNotIncreasing(uint64 treeSize, uint64 latestSize);
    error RootConflict(uint64 treeSize, bytes32 anchoredRoot, bytes32 root);
    error ZeroRoot();
    error IndexOutOfRange(uint256 index, uint256 count);

    event Anchored(uint64 indexed treeSize, bytes32 root, address operator, uint256 timestamp);

    Anchor[] private _anchors;
    mapping(uint64 treeSize => uint256 indexPlusOne) private _indexOf;

    constructor(IOrgRegistry registry_) OrgGated(registry_) {}

    function anchor(uint64 treeSize, bytes32 root) external {
        _orgWithRole(Role.LogOperator);
        if (root == bytes32(0)) revert ZeroRoot();
        uint256 at = _indexOf[treeSize];
        if (at != 0) {
            bytes32 anchored = _anchors[at - 1].root;
            if (anchored != root) revert RootConflict(treeSize, anchored, root);
            return; // idempotent retry
        }
        uint64 latestSize = _anchors.length == 0 ? 0 : _anchors[_anchors.length - 1].treeSize;
        if (treeSize <= latestSize) revert SizeNotIncreasing(treeSize, latestSize);
        _anchors.push(Anchor(treeSize, root, msg.sender, uint64(block.timestamp), uint64(block.number)));
        _indexOf[treeSize] = _anchors.length;
        emit Anchored(treeSize, root, msg.sender, block.timestamp);
    }

    /// The root anchored for `treeSize`, or zero if that size was never anchored.
    function rootAt(uint64 treeSize) external view returns (bytes32) {
        uint256 at = _indexOf[treeSize];
        return at == 0 ? bytes32(0) : _anchors[at - 1].root;
    }

    /// The newest anchor (all zero before the first).
    function latest() external view returns (Anchor memory a) {
        if (_anchors.length != 0) a = _anchors[_anchors.length - 1];
    }

    function anchorCount() external view returns (uint256) {
        return _anchors.length;
    }

    function anchorAt(uint256 index) external view returns (Anchor memory) {
        if (index >= _anchors.length) revert IndexOutOfRange(index, _anchors.length);
        return _anchors[index];
    }
}
