// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAnchorGovernance} from "./IAnchorGovernance.sol";
import {IOrgRegistry, Role} from "./IOrgRegistry.sol";

// slither-disable-start timestamp: key windows and the time bound use block time by design; the other flagged lines are index checks
/// Organisations, their roles, SM2 public keys (with validity windows) and transaction accounts.
/// Every change goes through the committee (FISCO BCOS v3 CommitteeManager is the model): a member
/// proposes (which counts as its vote for), members vote with weights, and the proposal executes in the
/// transaction of the vote that makes it pass. A proposal passes when
///     voted * 100 >= participatesRate * totalWeight  and  for * 100 >= winRate * voted
/// and is rejected once it can no longer pass: against * 100 > (100 - winRate) * totalWeight.
/// Votes are accepted while block.number < expiresAtBlock. If executing a passed proposal fails
/// (e.g. the org was added by another proposal meanwhile) the deciding vote reverts with that reason and
/// the proposal stays open until it expires or its proposer cancels it.
contract OrgRegistry is IOrgRegistry {
    /// Proposal kinds and the ABI encoding of their `data` (append only, never reorder):
    enum ProposalKind {
        None,
        AddOrg, //        (bytes32 orgId, uint8 role, string name)
        SetOrgRole, //    (bytes32 orgId, uint8 role)
        SetOrgStatus, //  (bytes32 orgId, bool active)
        AddKey, //        (bytes32 orgId, bytes publicKey, uint64 validFrom, uint64 validUntil)
        RevokeKey, //     (bytes32 orgId, uint256 keyIndex, uint64 revokedAt)   revokedAt 0 = now
        AddAccount, //    (bytes32 orgId, address account)
        RemoveAccount, // (address account)
        SetMember, //     (address member, uint32 weight)   adds or re-weights
        RemoveMember, //  (address member)
        SetRates, //      (uint8 participatesRate, uint8 winRate)
        VoidAnchors, //   (address provenanceLog, uint64 keepSize)   removes the anchors above keepSize
        SetMaxAnchorGrowth // (address provenanceLog, uint64 maxGrowth)
    }

    enum ProposalStatus {
        None,
        Open,
        Executed,
        Rejected,
        Cancelled,
        Expired
    }

    /// Bounds on caller-supplied times: a far-future value is refused rather than stored for every reader
    /// to choke on. Keys are rotated within years; a proposal's window is counted in blocks.
    uint64 public constant MAX_KEY_HORIZON = 30 * 365 days;
    uint64 public constant MAX_TTL_BLOCKS = 10_000_000;

    struct Org {
        Role role;
        bool active;
        uint64 createdAt;
        string name;
    }

    /// An SM2 public key, raw x‖y (64 bytes). Valid for validFrom <= t < validUntil (0 = no end) and,
    /// once revoked, only for t < revokedAt.
    struct Key {
        bytes publicKey;
        uint64 validFrom;
        uint64 validUntil;
        uint64 revokedAt;
    }

    struct Proposal {
        ProposalKind kind;
        ProposalStatus status;
        address proposer;
        uint64 createdBlock;
        uint64 expiresAtBlock;
        uint64 forWeight;
        uint64 againstWeight;
        bytes data;
    }

    // --- committee errors
    error NotCommitteeMember(address account);
    error InvalidCommittee();
    error DuplicateMember(address member);
    error InvalidWeight(address member, uint32 weight);
    error CommitteeEmpty();
    error InvalidRates(uint8 participatesRate, uint8 winRate);
    error InvalidProposalKind();
    error InvalidTtl(uint64 ttlBlocks);
    error ProposalNotFound(uint256 id);
    error ProposalNotOpen(uint256 id, ProposalStatus status);
    error ProposalExpired(uint256 id, uint64 expiresAtBlock);
    error AlreadyVoted(uint256 id, address member);
    error NotProposer(uint256 id, address account);
    // --- registry errors
    error InvalidOrgId();
    error OrgExists(bytes32 orgId);
    error OrgNotFound(bytes32 orgId);
    error InvalidRole(Role role);
    error InvalidPublicKey(uint256 length);
    error InvalidKeyWindow(uint64 validFrom, uint64 validUntil);
    error TimeTooFar(uint64 timestamp, uint256 latestAllowed);
    error KeyNotFound(bytes32 orgId, uint256 keyIndex);
    error KeyAlreadyRevoked(bytes32 orgId, uint256 keyIndex);
    error ZeroAddress();
    error AccountAlreadyBound(address account, bytes32 orgId);
    error AccountNotBound(address account);

    event ProposalCreated(
        uint256 indexed id, ProposalKind indexed kind, address indexed proposer, bytes data, uint64 expiresAtBlock
    );
    event Voted(uint256 indexed id, address indexed member, bool support, uint32 weight);
    event ProposalExecuted(uint256 indexed id);
    event ProposalRejected(uint256 indexed id);
    event ProposalCancelled(uint256 indexed id);
    event MemberSet(address indexed member, uint32 weight);
    event MemberRemoved(address indexed member);
    event RatesSet(uint8 participatesRate, uint8 winRate);
    event OrgAdded(bytes32 indexed orgId, Role role, string name);
    event OrgRoleChanged(bytes32 indexed orgId, Role oldRole, Role newRole);
    event OrgStatusChanged(bytes32 indexed orgId, bool active);
    event KeyAdded(
        bytes32 indexed orgId, uint256 indexed keyIndex, bytes publicKey, uint64 validFrom, uint64 validUntil
    );
    event KeyRevoked(bytes32 indexed orgId, uint256 indexed keyIndex, uint64 revokedAt);
    event AccountAdded(bytes32 indexed orgId, address indexed account);
    event AccountRemoved(bytes32 indexed orgId, address indexed account);

    uint8 public participatesRate;
    uint8 public winRate;
    uint64 public totalWeight;
    address[] private _members;
    mapping(address => uint32) public weightOf;
    mapping(address => uint256) private _memberPos; // index + 1

    Proposal[] private _proposals; // id = index + 1
    mapping(uint256 id => mapping(address => uint8)) private _votes; // 0 none, 1 for, 2 against

    bytes32[] private _orgIds;
    mapping(bytes32 => Org) private _orgs;
    mapping(bytes32 => Key[]) private _keys;
    mapping(bytes32 => address[]) private _accounts;
    mapping(address => bytes32) private _accountOrg;
    mapping(address => uint256) private _accountPos; // index + 1 in _accounts[org]

    constructor(
        address[] memory initialMembers,
        uint32[] memory initialWeights,
        uint8 participatesRate_,
        uint8 winRate_
    ) {
        if (initialMembers.length == 0 || initialMembers.length != initialWeights.length) {
            revert InvalidCommittee();
        }
        for (uint256 i = 0; i < initialMembers.length; i++) {
            if (_memberPos[initialMembers[i]] != 0) revert DuplicateMember(initialMembers[i]);
            _setMember(initialMembers[i], initialWeights[i]);
        }
        _setRates(participatesRate_, winRate_);
    }

    // ------------------------------------------------------------------ committee

    function propose(ProposalKind kind, bytes calldata data, uint64 ttlBlocks) external returns (uint256 id) {
        uint32 weight = _memberWeight();
        if (kind == ProposalKind.None) revert InvalidProposalKind();
        if (ttlBlocks == 0 || ttlBlocks > MAX_TTL_BLOCKS) revert InvalidTtl(ttlBlocks);
        uint64 expiresAtBlock = uint64(block.number) + ttlBlocks;
        _proposals.push(
            Proposal(kind, ProposalStatus.Open, msg.sender, uint64(block.number), expiresAtBlock, 0, 0, data)
        );
        id = _proposals.length;
        emit ProposalCreated(id, kind, msg.sender, data, expiresAtBlock);
        _castVote(id, true, weight);
    }

    function vote(uint256 id, bool support) external {
        uint32 weight = _memberWeight();
        Proposal storage p = _proposal(id);
        if (p.status != ProposalStatus.Open) revert ProposalNotOpen(id, p.status);
        if (block.number >= p.expiresAtBlock) revert ProposalExpired(id, p.expiresAtBlock);
        if (_votes[id][msg.sender] != 0) revert AlreadyVoted(id, msg.sender);
        _castVote(id, support, weight);
    }

    function cancelProposal(uint256 id) external {
        Proposal storage p = _proposal(id);
        if (p.proposer != msg.sender) revert NotProposer(id, msg.sender);
        ProposalStatus status = _statusOf(p);
        if (status != ProposalStatus.Open) revert ProposalNotOpen(id, status);
        p.status = ProposalStatus.Cancelled;
        emit ProposalCancelled(id);
    }

    function proposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    /// The proposal, with status Expired once its voting window has passed unexecuted.
    function getProposal(uint256 id) external view returns (Proposal memory p) {
        p = _proposal(id);
        p.status = _statusOf(_proposals[id - 1]);
    }

    /// 0 = not voted, 1 = for, 2 = against.
    function voteOf(uint256 id, address member) external view returns (uint8) {
        return _votes[id][member];
    }

    function members() external view returns (address[] memory accounts, uint32[] memory weights) {
        accounts = _members;
        weights = new uint32[](accounts.length);
        for (uint256 i = 0; i < accounts.length; i++) {
            weights[i] = weightOf[accounts[i]];
        }
    }

    // ------------------------------------------------------------------ reads

    function accountInfo(address account) public view returns (bytes32 orgId, Role role) {
        orgId = _accountOrg[account];
        if (orgId != bytes32(0)) role = orgRoleOf(orgId);
    }

    function orgRoleOf(bytes32 orgId) public view returns (Role) {
        Org storage o = _orgs[orgId];
        return o.active ? o.role : Role.None;
    }

    /// The account's effective role (Role.None if unbound or its org is suspended).
    function roleOf(address account) external view returns (Role role) {
        (, role) = accountInfo(account);
    }

    /// The account's org (zero if unbound), whatever the org's status.
    function orgOf(address account) external view returns (bytes32) {
        return _accountOrg[account];
    }

    function isPermitted(address account) external view returns (bool) {
        (, Role role) = accountInfo(account);
        return role != Role.None || weightOf[account] != 0;
    }

    function orgCount() external view returns (uint256) {
        return _orgIds.length;
    }

    function orgIds() external view returns (bytes32[] memory) {
        return _orgIds;
    }

    function getOrg(bytes32 orgId) external view returns (Org memory) {
        return _org(orgId);
    }

    function accountsOf(bytes32 orgId) external view returns (address[] memory) {
        return _accounts[orgId];
    }

    function keyCount(bytes32 orgId) external view returns (uint256) {
        return _keys[orgId].length;
    }

    function keyAt(bytes32 orgId, uint256 keyIndex) public view returns (Key memory) {
        if (keyIndex >= _keys[orgId].length) revert KeyNotFound(orgId, keyIndex);
        return _keys[orgId][keyIndex];
    }

    function keysOf(bytes32 orgId) external view returns (Key[] memory) {
        return _keys[orgId];
    }

    /// Whether the key was valid at `timestamp` (window and revocation; the org's status is not considered).
    function keyValidAt(bytes32 orgId, uint256 keyIndex, uint64 timestamp) external view returns (bool) {
        Key memory k = keyAt(orgId, keyIndex);
        if (timestamp < k.validFrom) return false;
        if (k.validUntil != 0 && timestamp >= k.validUntil) return false; // 0: no end
        if (k.revokedAt != 0 && timestamp >= k.revokedAt) return false; // 0: not revoked
        return true;
    }

    // ------------------------------------------------------------------ internals

    function _memberWeight() private view returns (uint32 weight) {
        weight = weightOf[msg.sender];
        if (weight == 0) revert NotCommitteeMember(msg.sender);
    }

    function _proposal(uint256 id) private view returns (Proposal storage) {
        if (id == 0 || id > _proposals.length) revert ProposalNotFound(id);
        return _proposals[id - 1];
    }

    function _statusOf(Proposal storage p) private view returns (ProposalStatus) {
        if (p.status == ProposalStatus.Open && block.number >= p.expiresAtBlock) return ProposalStatus.Expired;
        return p.status;
    }

    function _castVote(uint256 id, bool support, uint32 weight) private {
        Proposal storage p = _proposals[id - 1];
        _votes[id][msg.sender] = support ? 1 : 2;
        if (support) p.forWeight += weight;
        else p.againstWeight += weight;
        emit Voted(id, msg.sender, support, weight);

        uint256 voted = uint256(p.forWeight) + p.againstWeight;
        uint256 total = totalWeight;
        if (voted * 100 >= uint256(participatesRate) * total && uint256(p.forWeight) * 100 >= winRate * voted) {
            p.status = ProposalStatus.Executed;
            // Emitted first (checks-effects-interactions: a VoidAnchors execution calls out); a failing
            // execution reverts the whole vote, the event included.
            emit ProposalExecuted(id);
            _execute(p.kind, p.data);
        } else if (uint256(p.againstWeight) * 100 > (100 - uint256(winRate)) * total) {
            p.status = ProposalStatus.Rejected;
            emit ProposalRejected(id);
        }
    }

    function _execute(ProposalKind kind, bytes memory data) private {
        if (kind >= ProposalKind.SetMember) {
            _executeCommitteeChange(kind, data);
        } else if (kind == ProposalKind.AddOrg) {
            (bytes32 orgId, Role role, string memory name) = abi.decode(data, (bytes32, Role, string));
            _addOrg(orgId, role, name);
        } else if (kind == ProposalKind.SetOrgRole) {
            (bytes32 orgId, Role role) = abi.decode(data, (bytes32, Role));
            Org storage o = _org(orgId);
            if (role == Role.None) revert InvalidRole(role);
            emit OrgRoleChanged(orgId, o.role, role);
            o.role = role;
        } else if (kind == ProposalKind.SetOrgStatus) {
            (bytes32 orgId, bool active) = abi.decode(data, (bytes32, bool));
            _org(orgId).active = active;
            emit OrgStatusChanged(orgId, active);
        } else if (kind == ProposalKind.AddKey) {
            (bytes32 orgId, bytes memory publicKey, uint64 validFrom, uint64 validUntil) =
                abi.decode(data, (bytes32, bytes, uint64, uint64));
            _addKey(orgId, publicKey, validFrom, validUntil);
        } else if (kind == ProposalKind.RevokeKey) {
            (bytes32 orgId, uint256 keyIndex, uint64 revokedAt) = abi.decode(data, (bytes32, uint256, uint64));
            _revokeKey(orgId, keyIndex, revokedAt);
        } else if (kind == ProposalKind.AddAccount) {
            (bytes32 orgId, address account) = abi.decode(data, (bytes32, address));
            _addAccount(orgId, account);
        } else {
            _removeAccount(abi.decode(data, (address)));
        }
    }

    /// The kinds that change the committee itself or the log it governs.
    function _executeCommitteeChange(ProposalKind kind, bytes memory data) private {
        if (kind == ProposalKind.SetMember) {
            (address member, uint32 weight) = abi.decode(data, (address, uint32));
            _setMember(member, weight);
        } else if (kind == ProposalKind.RemoveMember) {
            _removeMember(abi.decode(data, (address)));
        } else if (kind == ProposalKind.SetRates) {
            (uint8 p, uint8 w) = abi.decode(data, (uint8, uint8));
            _setRates(p, w);
        } else if (kind == ProposalKind.VoidAnchors) {
            (address log, uint64 keepSize) = abi.decode(data, (address, uint64));
            // The log's own checks (NotAnchored, NothingToVoid) revert the deciding vote, as above.
            IAnchorGovernance(log).voidAnchorsAfter(keepSize);
        } else {
            (address log, uint64 maxGrowth) = abi.decode(data, (address, uint64));
            IAnchorGovernance(log).setMaxGrowth(maxGrowth);
        }
    }

    function _org(bytes32 orgId) private view returns (Org storage o) {
        o = _orgs[orgId];
        if (o.role == Role.None) revert OrgNotFound(orgId);
    }

    function _addOrg(bytes32 orgId, Role role, string memory name) private {
        if (orgId == bytes32(0)) revert InvalidOrgId();
        if (role == Role.None) revert InvalidRole(role);
        if (_orgs[orgId].role != Role.None) revert OrgExists(orgId);
        _orgs[orgId] = Org(role, true, uint64(block.timestamp), name);
        _orgIds.push(orgId);
        emit OrgAdded(orgId, role, name);
    }

    function _addKey(bytes32 orgId, bytes memory publicKey, uint64 validFrom, uint64 validUntil) private {
        _org(orgId);
        if (publicKey.length != 64) revert InvalidPublicKey(publicKey.length);
        if (validUntil != 0 && validUntil <= validFrom) revert InvalidKeyWindow(validFrom, validUntil);
        _notTooFar(validFrom);
        _notTooFar(validUntil);
        _keys[orgId].push(Key(publicKey, validFrom, validUntil, 0));
        emit KeyAdded(orgId, _keys[orgId].length - 1, publicKey, validFrom, validUntil);
    }

    function _revokeKey(bytes32 orgId, uint256 keyIndex, uint64 revokedAt) private {
        if (keyIndex >= _keys[orgId].length) revert KeyNotFound(orgId, keyIndex);
        Key storage k = _keys[orgId][keyIndex];
        if (k.revokedAt != 0) revert KeyAlreadyRevoked(orgId, keyIndex);
        // Backdating is allowed: a compromise is often discovered after the fact.
        if (revokedAt == 0) revokedAt = uint64(block.timestamp);
        _notTooFar(revokedAt);
        k.revokedAt = revokedAt;
        emit KeyRevoked(orgId, keyIndex, revokedAt);
    }

    function _notTooFar(uint64 timestamp) private view {
        uint256 latestAllowed = block.timestamp + MAX_KEY_HORIZON;
        if (timestamp > latestAllowed) revert TimeTooFar(timestamp, latestAllowed);
    }

    function _addAccount(bytes32 orgId, address account) private {
        _org(orgId);
        if (account == address(0)) revert ZeroAddress();
        bytes32 bound = _accountOrg[account];
        if (bound != bytes32(0)) revert AccountAlreadyBound(account, bound);
        _accounts[orgId].push(account);
        _accountOrg[account] = orgId;
        _accountPos[account] = _accounts[orgId].length;
        emit AccountAdded(orgId, account);
    }

    function _removeAccount(address account) private {
        bytes32 orgId = _accountOrg[account];
        if (orgId == bytes32(0)) revert AccountNotBound(account);
        address[] storage list = _accounts[orgId];
        uint256 pos = _accountPos[account];
        address last = list[list.length - 1];
        list[pos - 1] = last;
        _accountPos[last] = pos;
        list.pop();
        delete _accountOrg[account];
        delete _accountPos[account];
        emit AccountRemoved(orgId, account);
    }

    // slither-disable-next-line costly-loop: the constructor's loop writes totalWeight once a member, a handful
    function _setMember(address member, uint32 weight) private {
        if (member == address(0) || weight == 0) revert InvalidWeight(member, weight);
        if (_memberPos[member] == 0) {
            _members.push(member);
            _memberPos[member] = _members.length;
        }
        totalWeight = totalWeight - weightOf[member] + weight;
        weightOf[member] = weight;
        emit MemberSet(member, weight);
    }

    function _removeMember(address member) private {
        uint256 pos = _memberPos[member];
        if (pos == 0) revert NotCommitteeMember(member);
        if (_members.length == 1) revert CommitteeEmpty();
        address last = _members[_members.length - 1];
        _members[pos - 1] = last;
        _memberPos[last] = pos;
        _members.pop();
        totalWeight -= weightOf[member];
        delete weightOf[member];
        delete _memberPos[member];
        emit MemberRemoved(member);
    }

    function _setRates(uint8 participatesRate_, uint8 winRate_) private {
        if (participatesRate_ > 100 || winRate_ == 0 || winRate_ > 100) {
            revert InvalidRates(participatesRate_, winRate_);
        }
        participatesRate = participatesRate_;
        winRate = winRate_;
        emit RatesSet(participatesRate_, winRate_);
    }
}
// slither-disable-end timestamp
