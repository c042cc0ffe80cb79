// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {OrgRegistry} from "../../../contracts/OrgRegistry.sol";
import {Role} from "../../../contracts/IOrgRegistry.sol";
import {Test} from "./lib/Test.sol";

/// Members (and strangers) propose, vote and cancel random proposals. A model of the committee's rules
/// predicts every outcome: a proposal executes exactly when its weighted votes reach the thresholds, and
/// an execution that fails leaves nothing applied (the deciding vote reverts).
contract CommitteeHandler is Test {
    OrgRegistry public immutable reg;
    OrgRegistry.ProposalKind internal constant ADD_ORG = OrgRegistry.ProposalKind.AddOrg;

    struct P {
        OrgRegistry.ProposalKind kind;
        bytes data;
        address proposer;
        uint64 expiresAt;
        uint64 forW;
        uint64 againstW;
        OrgRegistry.ProposalStatus status; // as stored (Expired is derived from the block number)
    }

    struct Org {
        Role role;
        bool active;
        uint256 keys;
    }

    address[5] internal pool = [address(0xC0), address(0xC1), address(0xC2), address(0xC3), address(0xC4)];
    bytes32[4] internal orgIds = [bytes32(0), bytes32("org-a"), bytes32("org-b"), bytes32("org-c")];
    mapping(address => uint32) internal weight;
    uint256 internal memberCount;
    uint64 internal total;
    uint8 internal pRate;
    uint8 internal wRate;
    mapping(bytes32 => Org) internal orgs;
    mapping(bytes32 => mapping(uint256 => bool)) internal revoked;
    address[3] internal accounts = [address(0xACC1), address(0xACC2), address(0)];
    mapping(address => bytes32) internal accountOrg;
    uint256 internal orgCount;
    P[] internal props;
    mapping(uint256 => mapping(address => bool)) internal voted;

    uint256 public violations;
    string public firstViolation;
    uint256 public executed;

    constructor() {
        address[] memory m = new address[](3);
        uint32[] memory w = new uint32[](3);
        (m[0], m[1], m[2]) = (pool[0], pool[1], pool[2]);
        (w[0], w[1], w[2]) = (1, 1, 2);
        reg = new OrgRegistry(m, w, 50, 60);
        (weight[pool[0]], weight[pool[1]], weight[pool[2]], memberCount, total) = (1, 1, 2, 3, 4);
        (pRate, wRate) = (50, 60);
    }

    // ------------------------------------------------------------------ actions

    function propose(uint256 actorSeed, uint256 kindSeed, uint256 argSeed, uint256 ttlSeed) external {
        address who = _who(actorSeed);
        OrgRegistry.ProposalKind kind = OrgRegistry.ProposalKind(kindSeed % 11); // None..SetRates
        bytes memory data = _data(kind, argSeed);
        uint64 ttl = uint64(ttlSeed % 5 == 0 ? ttlSeed % 3 == 0 ? 0 : reg.MAX_TTL_BLOCKS() + 1 : 1 + ttlSeed % 20);
        bool allowed = weight[who] != 0 && kind != OrgRegistry.ProposalKind.None && ttl != 0
            && ttl <= reg.MAX_TTL_BLOCKS();
        props.push(P(kind, data, who, uint64(block.number) + ttl, 0, 0, OrgRegistry.ProposalStatus.Open));
        uint256 id = props.length;
        bool ok = allowed && _castVote(id, who, true);
        vm.prank(who);
        try reg.propose(kind, data, ttl) returns (uint256 got) {
            if (!ok) _violate("propose accepted though the rules forbid it");
            if (got != id) _violate("proposal id differs from the model");
            _settle(id);
        } catch {
            if (ok) _violate("propose refused though the rules allow it");
            props.pop();
            _unvote(id, who);
        }
    }

    function vote(uint256 actorSeed, uint256 idSeed, bool support) external {
        if (props.length == 0) return;
        address who = _who(actorSeed);
        uint256 id = 1 + idSeed % props.length;
        P storage p = props[id - 1];
        bool ok = weight[who] != 0 && p.status == OrgRegistry.ProposalStatus.Open && block.number < p.expiresAt
            && !voted[id][who];
        P memory before = p;
        bool counted = ok; // only a vote the rules admit enters the model's tally
        ok = ok && _castVote(id, who, support);
        vm.prank(who);
        try reg.vote(id, support) {
            if (!ok) _violate("vote accepted though the rules forbid it");
            _settle(id);
        } catch {
            if (ok) _violate("vote refused though the rules allow it");
            if (counted) {
                props[id - 1] = before;
                _unvote(id, who);
            }
        }
    }

    function cancel(uint256 actorSeed, uint256 idSeed) external {
        if (props.length == 0) return;
        uint256 id = 1 + idSeed % props.length;
        P storage p = props[id - 1];
        address who = actorSeed % 2 == 0 ? p.proposer : _who(actorSeed);
        bool ok = who == p.proposer && p.status == OrgRegistry.ProposalStatus.Open && block.number < p.expiresAt;
        vm.prank(who);
        try reg.cancelProposal(id) {
            if (!ok) _violate("cancel accepted though the rules forbid it");
            p.status = OrgRegistry.ProposalStatus.Cancelled;
        } catch {
            if (ok) _violate("cancel refused though the rules allow it");
        }
    }

    function roll(uint256 blocks, uint256 secs) external {
        vm.roll(block.number + 1 + blocks % 8);
        vm.warp(block.timestamp + secs % 30 days);
    }

    // ------------------------------------------------------------------ the check

    function checkState() external view {
        check(reg.totalWeight() == total, "total weight differs from the model");
        uint64 sum;
        for (uint256 i = 0; i < pool.length; i++) {
            check(reg.weightOf(pool[i]) == weight[pool[i]], "a member's weight differs");
            sum += weight[pool[i]];
        }
        check(sum == total, "weights do not add up to the total");
        (address[] memory listed,) = reg.members();
        check(listed.length == memberCount, "member count differs");
        check(reg.participatesRate() == pRate && reg.winRate() == wRate, "rates differ");
        check(reg.orgCount() == orgCount, "the organisation set changed outside an executed proposal");
        for (uint256 i = 0; i < 2; i++) {
            check(reg.orgOf(accounts[i]) == accountOrg[accounts[i]], "an account's organisation differs");
        }
        for (uint256 i = 1; i < orgIds.length; i++) {
            Org storage o = orgs[orgIds[i]];
            check(reg.keyCount(orgIds[i]) == o.keys, "key count differs");
            for (uint256 k = 0; k < o.keys; k++) {
                check((reg.keyAt(orgIds[i], k).revokedAt != 0) == revoked[orgIds[i]][k], "key revocation differs");
            }
            if (o.role == Role.None) continue;
            OrgRegistry.Org memory c = reg.getOrg(orgIds[i]);
            check(c.role == o.role && c.active == o.active, "organisation role or status differs");
        }
        check(reg.proposalCount() == props.length, "proposal count differs");
        for (uint256 id = 1; id <= props.length; id++) {
            P storage p = props[id - 1];
            OrgRegistry.Proposal memory c = reg.getProposal(id);
            OrgRegistry.ProposalStatus s = p.status;
            if (s == OrgRegistry.ProposalStatus.Open && block.number >= p.expiresAt) {
                s = OrgRegistry.ProposalStatus.Expired;
            }
            check(c.status == s, "proposal status differs: executed or rejected off the thresholds");
            check(c.forWeight == p.forW && c.againstWeight == p.againstW, "proposal tally differs");
        }
    }

    // ------------------------------------------------------------------ the model

    function _who(uint256 seed) private view returns (address) {
        return seed % 7 == 0 ? address(0xBAD) : pool[seed % pool.length];
    }

    /// Records the vote in the model; false if the proposal would pass but its execution would fail (the
    /// whole call then reverts).
    function _castVote(uint256 id, address who, bool support) private returns (bool) {
        P storage p = props[id - 1];
        voted[id][who] = true;
        if (support) p.forW += weight[who];
        else p.againstW += weight[who];
        uint256 v = uint256(p.forW) + p.againstW;
        if (v * 100 >= uint256(pRate) * total && uint256(p.forW) * 100 >= uint256(wRate) * v) {
            p.status = OrgRegistry.ProposalStatus.Executed;
            return _executes(p);
        }
        if (uint256(p.againstW) * 100 > (100 - uint256(wRate)) * total) {
            p.status = OrgRegistry.ProposalStatus.Rejected;
        }
        return true;
    }

    function _unvote(uint256 id, address who) private {
        voted[id][who] = false;
    }

    /// After a successful call: apply an executed proposal to the model.
    function _settle(uint256 id) private {
        P storage p = props[id - 1];
        if (p.status == OrgRegistry.ProposalStatus.Executed) {
            _apply(p);
            executed++;
        }
    }

    function _executes(P storage p) private view returns (bool) {
        OrgRegistry.ProposalKind k = p.kind;
        if (k == ADD_ORG) {
            (bytes32 id, Role role,) = abi.decode(p.data, (bytes32, Role, string));
            return id != bytes32(0) && role != Role.None && orgs[id].role == Role.None;
        }
        if (k == OrgRegistry.ProposalKind.SetOrgRole) {
            (bytes32 id, Role role) = abi.decode(p.data, (bytes32, Role));
            return orgs[id].role != Role.None && role != Role.None;
        }
        if (k == OrgRegistry.ProposalKind.SetOrgStatus) {
            (bytes32 id,) = abi.decode(p.data, (bytes32, bool));
            return orgs[id].role != Role.None;
        }
        uint256 horizon = block.timestamp + reg.MAX_KEY_HORIZON();
        if (k == OrgRegistry.ProposalKind.AddKey) {
            (bytes32 id, bytes memory key, uint64 from, uint64 until) = abi.decode(p.data, (bytes32, bytes, uint64, uint64));
            return orgs[id].role != Role.None && key.length == 64 && (until == 0 || until > from) && from <= horizon
                && until <= horizon;
        }
        if (k == OrgRegistry.ProposalKind.RevokeKey) {
            (bytes32 id, uint256 index, uint64 at) = abi.decode(p.data, (bytes32, uint256, uint64));
            return index < orgs[id].keys && !revoked[id][index] && (at == 0 ? block.timestamp : at) <= horizon;
        }
        if (k == OrgRegistry.ProposalKind.AddAccount) {
            (bytes32 id, address a) = abi.decode(p.data, (bytes32, address));
            return orgs[id].role != Role.None && a != address(0) && accountOrg[a] == bytes32(0);
        }
        if (k == OrgRegistry.ProposalKind.RemoveAccount) {
            return accountOrg[abi.decode(p.data, (address))] != bytes32(0);
        }
        if (k == OrgRegistry.ProposalKind.SetMember) {
            (address m, uint32 w) = abi.decode(p.data, (address, uint32));
            return m != address(0) && w != 0;
        }
        if (k == OrgRegistry.ProposalKind.RemoveMember) {
            address m = abi.decode(p.data, (address));
            return weight[m] != 0 && memberCount > 1;
        }
        (uint8 pr, uint8 wr) = abi.decode(p.data, (uint8, uint8));
        return pr <= 100 && wr != 0 && wr <= 100;
    }

    function _apply(P storage p) private {
        OrgRegistry.ProposalKind k = p.kind;
        if (k == ADD_ORG) {
            (bytes32 id, Role role,) = abi.decode(p.data, (bytes32, Role, string));
            (orgs[id].role, orgs[id].active) = (role, true);
            orgCount++;
        } else if (k == OrgRegistry.ProposalKind.SetOrgRole) {
            (bytes32 id, Role role) = abi.decode(p.data, (bytes32, Role));
            orgs[id].role = role;
        } else if (k == OrgRegistry.ProposalKind.SetOrgStatus) {
            (bytes32 id, bool active) = abi.decode(p.data, (bytes32, bool));
            orgs[id].active = active;
        } else if (k == OrgRegistry.ProposalKind.AddKey) {
            (bytes32 id,,,) = abi.decode(p.data, (bytes32, bytes, uint64, uint64));
            orgs[id].keys++;
        } else if (k == OrgRegistry.ProposalKind.RevokeKey) {
            (bytes32 id, uint256 index,) = abi.decode(p.data, (bytes32, uint256, uint64));
            revoked[id][index] = true;
        } else if (k == OrgRegistry.ProposalKind.AddAccount) {
            (bytes32 id, address a) = abi.decode(p.data, (bytes32, address));
            accountOrg[a] = id;
        } else if (k == OrgRegistry.ProposalKind.RemoveAccount) {
            accountOrg[abi.decode(p.data, (address))] = bytes32(0);
        } else if (k == OrgRegistry.ProposalKind.SetMember) {
            (address m, uint32 w) = abi.decode(p.data, (address, uint32));
            if (weight[m] == 0) memberCount++;
            total = total - weight[m] + w;
            weight[m] = w;
        } else if (k == OrgRegistry.ProposalKind.RemoveMember) {
            address m = abi.decode(p.data, (address));
            total -= weight[m];
            weight[m] = 0;
            memberCount--;
        } else {
            (pRate, wRate) = abi.decode(p.data, (uint8, uint8));
        }
    }

    /// Arguments that are valid most of the time, and every way of being invalid some of the time.
    function _data(OrgRegistry.ProposalKind kind, uint256 seed) private view returns (bytes memory) {
        bytes32 org = orgIds[seed % orgIds.length];
        uint256 s = seed >> 8;
        if (kind == ADD_ORG || kind == OrgRegistry.ProposalKind.None) {
            return abi.encode(org, Role(s % 11), "org");
        }
        if (kind == OrgRegistry.ProposalKind.SetOrgRole) return abi.encode(org, Role(s % 11));
        if (kind == OrgRegistry.ProposalKind.SetOrgStatus) return abi.encode(org, s % 2 == 0);
        if (kind == OrgRegistry.ProposalKind.AddKey) {
            uint64[4] memory times =
                [uint64(0), uint64(block.timestamp + 1 days), uint64(block.timestamp + 40 * 365 days), uint64(2 ** 40)];
            bytes memory key = new bytes(s % 9 == 0 ? 63 : 64);
            return abi.encode(org, key, times[s % 3], times[(s >> 4) % 4]);
        }
        if (kind == OrgRegistry.ProposalKind.RevokeKey) {
            uint64[3] memory at = [uint64(0), uint64(block.timestamp - 1), uint64(2 ** 40)];
            return abi.encode(org, s % 3, at[(s >> 4) % 3]);
        }
        if (kind == OrgRegistry.ProposalKind.AddAccount) return abi.encode(org, accounts[s % 3]);
        if (kind == OrgRegistry.ProposalKind.RemoveAccount) return abi.encode(accounts[s % 3]);
        address member = s % 9 == 0 ? address(0) : pool[s % pool.length];
        if (kind == OrgRegistry.ProposalKind.SetMember) return abi.encode(member, uint32((s >> 4) % 4));
        if (kind == OrgRegistry.ProposalKind.RemoveMember) return abi.encode(member);
        return abi.encode(uint8(s % 120), uint8((s >> 8) % 120));
    }

    function _violate(string memory what) private {
        if (violations == 0) firstViolation = what;
        violations++;
    }
}

/// The committee's rules over random sequences of proposals, votes, cancellations and time.
contract CommitteeInvariants is Test {
    CommitteeHandler internal handler;

    function setUp() public {
        vm.warp(1_750_000_000);
        handler = new CommitteeHandler();
        targetContract(address(handler));
    }

    /// Every call's outcome is the rules': only members act, each votes once, within the window, and
    /// a passing proposal whose execution fails reverts the deciding call (nothing half-applied).
    function invariant_every_call_followed_the_rules() public view {
        check(handler.violations() == 0, handler.firstViolation());
    }

    /// Organisations, keys, members, weights and rates change only through proposals that reached the
    /// thresholds of weighted votes; every proposal's status and tally are the model's.
    function invariant_registry_matches_the_model() public view {
        handler.checkState();
    }
}
