// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {OrgRegistry} from "../../../contracts/OrgRegistry.sol";
import {ProvenanceLog} from "../../../contracts/ProvenanceLog.sol";
import {Rfc9162} from "../../../contracts/Rfc9162.sol";
import {Role} from "../../../contracts/IOrgRegistry.sol";
import {Fixture, Handler} from "./lib/Fixture.sol";
import {RefTrees} from "./lib/RefTrees.sol";
import {Test} from "./lib/Test.sol";

/// Log operators (and everyone else) anchor honest trees, forks of them, garbage and absurd sizes; the
/// committee voids anchors and moves the growth bound. A model predicts every outcome from the trees'
/// leaves, never from roots or proofs, so it does not share the contract's reasoning.
contract LogHandler is Handler {
    uint256 public constant MAX_SIZE = 40; // reference trees stay small: every hash is ~100k gas of SM3
    uint256 internal constant RANDOM = type(uint256).max; // "tree" of a garbage root: shares nothing

    struct A {
        uint64 size;
        bytes32 root;
        uint256 tree;
        uint64 boundThen;
    }

    ProvenanceLog public immutable log;
    RefTrees public immutable trees;
    A[] internal live;
    uint64 internal maxGrowth;
    mapping(uint64 => bool) internal everAnchored;
    uint64[] internal everSizes;
    uint256 public anchored;
    uint256 public refused;
    uint256 public voids;

    constructor(ProvenanceLog log_, OrgRegistry registry_, address[] memory actors_, address heavy)
        Handler(registry_, actors_, heavy)
    {
        log = log_;
        trees = new RefTrees();
        maxGrowth = log_.maxGrowth();
    }

    /// Anchor tree `t` (honest or a fork) at a size past the latest, with that tree's consistency proof.
    function anchorTree(uint256 actorSeed, uint256 treeSeed, uint256 growSeed) external {
        (address who,, Role role) = _actor(actorSeed, Role.LogOperator, bytes32(0));
        uint256 t = treeSeed % 4 == 0 ? treeSeed % trees.count() : 0;
        (uint64 latest,) = _latest();
        uint256 size = latest + 1 + growSeed % (maxGrowth < 12 ? maxGrowth + 2 : 12);
        if (size > MAX_SIZE) return;
        trees.grow(t, size);
        bytes32 root = trees.root(t, size);
        bytes32[] memory proof = latest == 0 ? new bytes32[](0) : trees.consistencyProof(t, latest, size);
        bool extends_ = live.length == 0 || trees.commonPrefix(t, live[live.length - 1].tree) >= latest;
        bool ok = role == Role.LogOperator && size - latest <= maxGrowth && extends_;
        _anchor(who, uint64(size), root, proof, ok, t);
    }

    /// A garbage root with a garbage proof: only ever a first anchor (nothing to be consistent with).
    function anchorGarbage(uint256 actorSeed, uint256 sizeSeed, bytes32 root, uint8 proofLen) external {
        (address who,, Role role) = _actor(actorSeed, Role.LogOperator, bytes32(0));
        (uint64 latest,) = _latest();
        uint64 size = uint64(latest + 1 + sizeSeed % 4);
        bytes32[] memory proof = new bytes32[](proofLen % 6);
        for (uint256 i = 0; i < proof.length; i++) {
            proof[i] = keccak256(abi.encode(root, i));
        }
        bool ok = role == Role.LogOperator && live.length == 0 && proof.length == 0 && root != bytes32(0)
            && size - latest <= maxGrowth;
        _anchor(who, size, root, proof, ok, RANDOM);
    }

    /// The #23.8 attack: a size no log reaches, which would have frozen anchoring for good.
    function anchorAbsurd(uint256 actorSeed, uint64 size, bytes32 root) external {
        (address who,,) = _actor(actorSeed, Role.LogOperator, bytes32(0));
        (uint64 latest,) = _latest();
        if (size < 2 ** 62) size = type(uint64).max - size % 1000;
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = root;
        _anchor(who, size, root, proof, false, RANDOM);
        check(latest <= MAX_SIZE, "unreachable");
    }

    /// An anchored size again: the same root is a no-op, another root a conflict; a smaller size that was
    /// never anchored is refused.
    function reanchor(uint256 actorSeed, uint256 idxSeed, bool sameRoot) external {
        if (live.length == 0) return;
        (address who,, Role role) = _actor(actorSeed, Role.LogOperator, bytes32(0));
        A memory a = live[idxSeed % live.length];
        bytes32 root = sameRoot ? a.root : keccak256(abi.encode(a.root));
        uint64 size = idxSeed % 3 == 0 && a.size > 1 && log.rootAt(a.size - 1) == bytes32(0) ? a.size - 1 : a.size;
        bool ok = role == Role.LogOperator && sameRoot && size == a.size;
        uint256 before = log.anchorCount();
        vm.prank(who);
        try log.anchor(size, root, new bytes32[](0)) {
            _expect(ok, true, "re-anchor");
        } catch {
            _expect(ok, false, "re-anchor");
        }
        if (log.anchorCount() != before) _violate("a re-anchor changed the anchor count");
    }

    /// A new fork of the honest tree, at a point below what is anchored or beyond it.
    function fork(uint256 pointSeed) external {
        if (trees.count() >= 5) return;
        trees.fork(1 + pointSeed % MAX_SIZE);
    }

    /// The committee voids the anchors above an anchored size (or all); anyone else is refused.
    function voidAnchors(uint256 idxSeed, bool byCommittee) external {
        uint64 keep = live.length == 0 || idxSeed % 5 == 0 ? 0 : live[idxSeed % live.length].size;
        if (idxSeed % 7 == 0) keep += 1; // usually not an anchored size
        bool anchoredKeep = keep == 0 || _isLive(keep);
        bool ok = byCommittee && anchoredKeep && (keep == 0 ? live.length != 0 : live[live.length - 1].size != keep);
        vm.prank(byCommittee ? heavyMember : actors[idxSeed % actors.length]);
        if (byCommittee) {
            try registry.propose(OrgRegistry.ProposalKind.VoidAnchors, abi.encode(address(log), keep), 1000) {
                _expect(ok, true, "void");
                while (live.length != 0 && live[live.length - 1].size > keep) live.pop();
                voids++;
            } catch {
                _expect(ok, false, "void");
            }
        } else {
            try log.voidAnchorsAfter(keep) {
                _violate("someone other than the committee voided anchors");
            } catch {}
        }
    }

    /// The committee moves the growth bound (zero is refused: it would stop anchoring).
    function setMaxGrowth(uint256 seed) external {
        uint64 value = seed % 4 == 0 ? log.DEFAULT_MAX_GROWTH() : uint64(seed % 9);
        vm.prank(heavyMember);
        try registry.propose(OrgRegistry.ProposalKind.SetMaxAnchorGrowth, abi.encode(address(log), value), 1000) {
            _expect(value != 0, true, "setMaxGrowth");
            maxGrowth = value;
        } catch {
            _expect(value != 0, false, "setMaxGrowth");
        }
    }

    function checkState() external view {
        check(log.anchorCount() == live.length, "anchor count differs from the model");
        check(log.maxGrowth() == maxGrowth, "growth bound differs");
        for (uint256 i = 0; i < live.length; i++) {
            ProvenanceLog.Anchor memory c = log.anchorAt(i);
            A storage m = live[i];
            check(c.treeSize == m.size && c.root == m.root, "an anchor differs from the model");
            check(log.rootAt(m.size) == m.root, "a size's root changed");
            uint64 previous = i == 0 ? 0 : live[i - 1].size;
            check(m.size > previous, "anchored sizes did not grow");
            check(m.size - previous <= m.boundThen && m.size <= MAX_SIZE, "an anchor grew beyond the bound");
            if (i != 0) {
                check(trees.commonPrefix(live[i - 1].tree, m.tree) >= previous, "an anchor does not extend the last");
            }
        }
        for (uint256 i = 0; i < everSizes.length; i++) {
            if (!_isLive(everSizes[i])) check(log.rootAt(everSizes[i]) == bytes32(0), "a voided size kept a root");
        }
    }

    function _anchor(address who, uint64 size, bytes32 root, bytes32[] memory proof, bool ok, uint256 t) private {
        vm.prank(who);
        try log.anchor(size, root, proof) {
            _expect(ok, true, "anchor");
            live.push(A(size, root, t, maxGrowth));
            if (!everAnchored[size]) everSizes.push(size);
            everAnchored[size] = true;
            anchored++;
        } catch {
            _expect(ok, false, "anchor");
            refused++;
        }
    }

    function _latest() private view returns (uint64 size, bytes32 root) {
        if (live.length == 0) return (0, bytes32(0));
        A storage a = live[live.length - 1];
        return (a.size, a.root);
    }

    function _isLive(uint64 size) private view returns (bool) {
        for (uint256 i = 0; i < live.length; i++) {
            if (live[i].size == size) return true;
        }
        return false;
    }
}

/// ProvenanceLog's rules over random sequences (docs/security.md: the log operator's key misused).
/// forge-config: default.invariant.runs = 24
/// forge-config: default.invariant.depth = 40
/// forge-config: deep.invariant.runs = 150
/// forge-config: deep.invariant.depth = 80
contract ProvenanceLogInvariants is Fixture {
    LogHandler internal handler;

    function setUp() public {
        _deployRegistry();
        _everyRole();
        handler = new LogHandler(new ProvenanceLog(registry), registry, actors, members[2]);
        targetContract(address(handler));
    }

    /// Every anchor, void and bound change had the outcome the rules give: only operators anchor, only
    /// extensions of the latest anchor, within the bound; only the committee voids; absurd sizes never.
    function invariant_every_call_followed_the_rules() public view {
        check(handler.violations() == 0, handler.firstViolation());
    }

    /// Sizes only grow, a size's root never changes (but by a committee void), each anchor extends the one
    /// before it (checked on the trees' leaves), and no anchor grew past the bound in force.
    function invariant_anchors_form_one_growing_history() public view {
        handler.checkState();
    }
}

/// The on-chain consistency check against the reference trees, for every shape of (m, n).
contract Rfc9162Test is Test {
    RefTrees internal trees;

    function setUp() public {
        trees = new RefTrees();
    }

    function check_(uint256 m, uint256 n, bytes32 r1, bytes32 r2, bytes32[] calldata proof) external view returns (bool) {
        return Rfc9162.consistent(m, n, r1, r2, proof, false);
    }

    /// forge-config: default.fuzz.runs = 64
    /// forge-config: deep.fuzz.runs = 500
    function testFuzz_honest_proofs_verify_and_forks_do_not(uint256 mSeed, uint256 nSeed, uint256 forkSeed) public {
        uint256 n = 2 + nSeed % 39;
        uint256 m = 1 + mSeed % (n - 1);
        trees.grow(0, n);
        _honest(m, n, forkSeed);
        _forks(m, n, forkSeed);
    }

    function _honest(uint256 m, uint256 n, uint256 seed) private view {
        bytes32[] memory proof = trees.consistencyProof(0, m, n);
        (bytes32 r1, bytes32 r2) = (trees.root(0, m), trees.root(0, n));
        check(this.check_(m, n, r1, r2, proof), "an honest proof was refused");
        check(!this.check_(m, n, r1, keccak256(abi.encode(r2)), proof), "a wrong new root passed");
        check(!this.check_(m, n, keccak256(abi.encode(r1)), r2, proof), "a wrong old root passed");
        // Not asserted: that the proof fails for another size n'. Hashes do not bind a subtree's leaf count,
        // so (n', r2) may pass where the paths have one shape (15 and 16 from 3): the size is the signed
        // checkpoint's word, and no such claim rewrites the first m leaves.
        if (proof.length != 0) {
            proof[seed % proof.length] ^= bytes32(uint256(1));
            check(!this.check_(m, n, r1, r2, proof), "a tampered proof passed");
        }
    }

    function _forks(uint256 m, uint256 n, uint256 seed) private {
        bytes32 r1 = trees.root(0, m);
        // A fork below m: its own proof leads to its own roots, never to the honest old root.
        uint256 t = trees.fork(seed % m);
        trees.grow(t, n);
        check(!this.check_(m, n, r1, trees.root(t, n), trees.consistencyProof(t, m, n)), "a fork passed");
        // A fork at or beyond m extends the honest tree of size m: a consistent (if invented) history.
        uint256 u = trees.fork(m + seed % (n - m + 1));
        trees.grow(u, n);
        check(this.check_(m, n, r1, trees.root(u, n), trees.consistencyProof(u, m, n)), "an extension was refused");
    }
}
