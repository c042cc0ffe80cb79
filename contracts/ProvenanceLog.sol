// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAnchorGovernance} from "./IAnchorGovernance.sol";
import {IOrgRegistry, OrgGated, Role} from "./IOrgRegistry.sol";
import {Rfc9162} from "./Rfc9162.sol";
import {SM3} from "./SM3.sol";

// slither-disable-start timestamp: false positives: index and zero checks on the anchors array (whose entries carry a time)
/// Anchors (tree size, root) of the SM3 Merkle log, from log_operator accounts only.
/// Every anchor extends the previous one: it carries the RFC 9162 consistency proof from the latest
/// anchored (size, root), checked here with SM3, so an operator cannot anchor a rewritten history.
/// Sizes strictly increase, by at most `maxGrowth` an anchor, so no anchor can claim an absurd size; a
/// size, once anchored, keeps its root unless the committee voids it. Re-anchoring the exact same
/// (size, root) is a no-op (no event), so an anchoring worker can retry after a lost receipt.
/// Recovery (docs/design/anchor-consistency.md): an anchor the gateway's log cannot extend (the operator's
/// key misused) stops anchoring until the committee votes `VoidAnchors`, which removes the anchors above
/// a size; `SetMaxAnchorGrowth` changes the bound. Both arrive from the registry only.
contract ProvenanceLog is OrgGated, IAnchorGovernance {
    struct Anchor {
        uint64 treeSize;
        bytes32 root;
        address operator;
        uint64 timestamp;
        uint64 blockNumber;
    }

    /// The bound a new deployment starts with: ten times the gateway's default backlog limit, so a healthy
    /// gateway never meets it (its anchorer picks a checkpoint within the bound anyway).
    uint64 public constant DEFAULT_MAX_GROWTH = 1_000_000;

    error SizeNotIncreasing(uint64 treeSize, uint64 latestSize);
    error RootConflict(uint64 treeSize, bytes32 anchoredRoot, bytes32 root);
    error ZeroRoot();
    error IndexOutOfRange(uint256 index, uint256 count);
    error GrowthTooLarge(uint64 treeSize, uint64 latestSize, uint64 maxGrowth);
    error InconsistentAnchor(uint64 latestSize, bytes32 latestRoot, uint64 treeSize, bytes32 root);
    error NotRegistry(address account);
    error NotAnchored(uint64 treeSize);
    error NothingToVoid(uint64 keepSize);
    error InvalidMaxGrowth(uint64 maxGrowth);

    event Anchored(uint64 indexed treeSize, bytes32 root, address operator, uint256 timestamp);
    event AnchorVoided(uint64 indexed treeSize, bytes32 root, address operator);
    event AnchorsVoided(uint64 keptSize, uint64 voidedLatestSize, uint256 count);
    event MaxGrowthSet(uint64 maxGrowth);

    /// Whether this chain's SM3 precompile was found working at deployment (our node); else Solidity SM3.
    bool public immutable sm3Precompiled;
    uint64 public maxGrowth;

    Anchor[] private _anchors;
    mapping(uint64 treeSize => uint256 indexPlusOne) private _indexOf;

    constructor(IOrgRegistry registry_) OrgGated(registry_) {
        sm3Precompiled = SM3.precompileWorks();
        maxGrowth = DEFAULT_MAX_GROWTH;
    }

    /// Anchor (treeSize, root), which must extend the latest anchor: `consistencyProof` is the RFC 9162
    /// proof from the latest anchored size to treeSize (empty for the first anchor).
    function anchor(uint64 treeSize, bytes32 root, bytes32[] calldata consistencyProof) external {
        _orgWithRole(Role.LogOperator);
        if (root == bytes32(0)) revert ZeroRoot();
        uint256 at = _indexOf[treeSize];
        if (at != 0) {
            bytes32 anchored = _anchors[at - 1].root;
            if (anchored != root) revert RootConflict(treeSize, anchored, root);
            return; // idempotent retry
        }
        uint256 count = _anchors.length;
        (uint64 latestSize, bytes32 latestRoot) = count == 0 ? (0, bytes32(0)) : _sizeRoot(_anchors[count - 1]);
        if (treeSize <= latestSize) revert SizeNotIncreasing(treeSize, latestSize);
        if (treeSize - latestSize > maxGrowth) revert GrowthTooLarge(treeSize, latestSize, maxGrowth);
        // Every tree extends the empty one: the first anchor has nothing to be consistent with.
        bool extendsLatest = count == 0
            ? consistencyProof.length == 0
            : Rfc9162.consistent(latestSize, treeSize, latestRoot, root, consistencyProof, sm3Precompiled);
        if (!extendsLatest) revert InconsistentAnchor(latestSize, latestRoot, treeSize, root);
        _anchors.push(Anchor(treeSize, root, msg.sender, uint64(block.timestamp), uint64(block.number)));
        _indexOf[treeSize] = _anchors.length;
        emit Anchored(treeSize, root, msg.sender, block.timestamp);
    }

    // slither-disable-start costly-loop: one pop and one delete an anchor voided, as many as the committee chose
    /// Committee only (an executed VoidAnchors proposal): remove every anchor above `keepSize`, which must
    /// be 0 (void all) or an anchored size. The next anchor must then extend `keepSize`.
    function voidAnchorsAfter(uint64 keepSize) external {
        _onlyRegistry();
        if (keepSize != 0 && _indexOf[keepSize] == 0) revert NotAnchored(keepSize);
        uint256 count = _anchors.length;
        uint256 keep = keepSize == 0 ? 0 : _indexOf[keepSize];
        if (keep == count) revert NothingToVoid(keepSize);
        uint64 voidedLatest = _anchors[count - 1].treeSize;
        for (uint256 i = count; i > keep; i--) {
            Anchor storage a = _anchors[i - 1];
            emit AnchorVoided(a.treeSize, a.root, a.operator);
            delete _indexOf[a.treeSize];
            _anchors.pop();
        }
        emit AnchorsVoided(keepSize, voidedLatest, count - keep);
    }
    // slither-disable-end costly-loop

    /// Committee only (an executed SetMaxAnchorGrowth proposal).
    function setMaxGrowth(uint64 maxGrowth_) external {
        _onlyRegistry();
        if (maxGrowth_ == 0) revert InvalidMaxGrowth(maxGrowth_);
        maxGrowth = maxGrowth_;
        emit MaxGrowthSet(maxGrowth_);
    }

    /// The root anchored for `treeSize`, or zero if that size was never anchored (or was voided).
    function rootAt(uint64 treeSize) external view returns (bytes32 root) {
        uint256 at = _indexOf[treeSize];
        if (at != 0) root = _anchors[at - 1].root;
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

    function _sizeRoot(Anchor storage a) private view returns (uint64, bytes32) {
        return (a.treeSize, a.root);
    }

    function _onlyRegistry() private view {
        if (msg.sender != address(registry)) revert NotRegistry(msg.sender);
    }
}
// slither-disable-end timestamp
