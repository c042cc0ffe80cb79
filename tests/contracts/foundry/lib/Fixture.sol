// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {OrgRegistry} from "../../../../contracts/OrgRegistry.sol";
import {Role} from "../../../../contracts/IOrgRegistry.sol";
import {Test, Vm} from "./Test.sol";

/// A registry with the committee of the Python suite (weights 1, 1, 2; 50 % participation, 60 % win: the
/// heavy member passes a proposal alone) and organisations of every role, each with one account, plus
/// accounts of no organisation (strangers). Handlers act as any of them.
abstract contract Fixture is Test {
    OrgRegistry internal registry;
    address[] internal members;
    address[] internal actors; // every organisation's account, then the strangers
    mapping(address => bytes32) internal orgOfActor;

    function _deployRegistry() internal {
        members = [address(0xC0), address(0xC1), address(0xC2)];
        uint32[] memory weights = new uint32[](3);
        (weights[0], weights[1], weights[2]) = (1, 1, 2);
        registry = new OrgRegistry(members, weights, 50, 60);
    }

    /// Passes a proposal with the heavy member alone (it executes in the proposing transaction).
    function _enact(OrgRegistry.ProposalKind kind, bytes memory data) internal {
        vm.prank(members[2]);
        registry.propose(kind, data, 1000);
    }

    function _org(string memory name, Role role, uint160 account) internal returns (address a) {
        bytes32 id = bytes32(bytes(name));
        a = address(account);
        _enact(OrgRegistry.ProposalKind.AddOrg, abi.encode(id, role, name));
        _enact(OrgRegistry.ProposalKind.AddAccount, abi.encode(id, a));
        actors.push(a);
        orgOfActor[a] = id;
    }

    /// Two organisations of every role (one of the rest), and two strangers.
    function _everyRole() internal {
        _org("hospital-1", Role.Hospital, 0x1001);
        _org("hospital-2", Role.Hospital, 0x1002);
        _org("pharmacy-1", Role.Pharmacy, 0x2001);
        _org("pharmacy-2", Role.Pharmacy, 0x2002);
        _org("data-owner-1", Role.DataOwner, 0x3001);
        _org("data-owner-2", Role.DataOwner, 0x3002);
        _org("data-user-1", Role.DataUser, 0x4001);
        _org("data-user-2", Role.DataUser, 0x4002);
        _org("env-bureau", Role.EnvBureau, 0x5101);
        _org("station-1", Role.MonitoringStation, 0x6001);
        _org("party-branch-1", Role.PartyBranch, 0x7001);
        _org("party-branch-2", Role.PartyBranch, 0x7002);
        _org("auditor", Role.Auditor, 0x8001);
        _org("regulator", Role.Regulator, 0x9001);
        _org("log-operator-1", Role.LogOperator, 0xA001);
        _org("log-operator-2", Role.LogOperator, 0xA002);
        actors.push(address(0xBAD1));
        actors.push(address(0xBAD2));
        actors.push(members[0]); // a committee member belongs to no organisation either
    }
}

/// What every handler shares: the actors, and a record of any call whose outcome broke the model.
abstract contract Handler is Test {
    OrgRegistry internal immutable registry;
    address[] internal actors;
    address internal immutable heavyMember;

    uint256 public violations;
    string public firstViolation;

    mapping(Role => address[]) internal byRole; // the actors' roles at the start

    constructor(OrgRegistry registry_, address[] memory actors_, address heavyMember_) {
        registry = registry_;
        actors = actors_;
        heavyMember = heavyMember_;
        for (uint256 i = 0; i < actors_.length; i++) {
            (, Role r) = registry_.accountInfo(actors_[i]);
            byRole[r].push(actors_[i]);
        }
    }

    /// Who makes a call: one time in three anyone (another role, a stranger), one time in three an actor of
    /// the role the call is for, and one time in three `preferred`'s account (the issuer, the dataset's
    /// owner, the requester) when it is known. Else few calls would get far. With, as the registry sees it
    /// now (the organisation may have been suspended meanwhile), its organisation and effective role.
    function _actor(uint256 seed, Role usual, bytes32 preferred)
        internal
        view
        returns (address who, bytes32 org, Role role)
    {
        address[] storage usuals = byRole[usual];
        uint256 pick = seed % 3;
        who = actors[(seed / 3) % actors.length];
        if (pick == 1 && preferred != bytes32(0)) {
            who = registry.accountsOf(preferred)[0];
        } else if (pick != 0 && usuals.length != 0) {
            who = usuals[(seed / 3) % usuals.length];
        }
        (org, role) = registry.accountInfo(who);
    }

    function _violate(string memory what) internal {
        if (violations == 0) firstViolation = what;
        violations++;
    }

    /// The outcome of a call against the model's expectation.
    function _expect(bool expected, bool succeeded, string memory what) internal {
        if (expected && !succeeded) _violate(string.concat(what, ": refused though the rules allow it"));
        if (!expected && succeeded) _violate(string.concat(what, ": accepted though the rules forbid it"));
    }

    /// Two times in three one of `used` (the ids calls made so far), else any of `all` (also one never used):
    /// most calls act on what exists, some on what does not.
    function _pick(uint256 seed, bytes32[] storage used, bytes32[4] storage all) internal view returns (bytes32) {
        if (seed % 3 != 0 && used.length != 0) return used[(seed / 3) % used.length];
        return all[seed % all.length];
    }

    /// The data of the one log `emitter` emitted with `topic0` in the recorded logs (empty if none).
    function _event(address emitter, bytes32 topic0) internal returns (bytes32[] memory topics, bytes memory data) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 found;
        for (uint256 i = 0; i < logs.length; i++) {
            if (logs[i].emitter == emitter && logs[i].topics.length != 0 && logs[i].topics[0] == topic0) {
                (topics, data) = (logs[i].topics, logs[i].data);
                found++;
            }
        }
        if (found != 1) _violate("a workflow call did not emit exactly one event");
    }

}

/// The world around the workflows: the clock moves on, and the committee suspends an organisation now and
/// then (and reactivates it), so calls by suspended organisations' accounts are tried too.
contract WorldHandler is Test {
    OrgRegistry internal immutable registry;
    address[] internal actors;
    address internal immutable heavyMember;
    uint256 public suspensions;

    constructor(OrgRegistry registry_, address[] memory actors_, address heavyMember_) {
        registry = registry_;
        actors = actors_;
        heavyMember = heavyMember_;
    }

    /// A suspended organisation is always reactivated; an active one suspended one time in three.
    function toggleOrg(uint256 actorSeed) external {
        bytes32 org = registry.orgOf(actors[actorSeed % actors.length]);
        if (org == bytes32(0)) return;
        bool active = registry.getOrg(org).active;
        if (active && (actorSeed >> 128) % 3 != 0) return;
        if (active) suspensions++;
        vm.prank(heavyMember);
        registry.propose(OrgRegistry.ProposalKind.SetOrgStatus, abi.encode(org, !active), 1000);
    }

    function warp(uint256 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 2 days));
        vm.roll(block.number + 1);
    }
}
