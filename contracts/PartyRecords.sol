// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, OrgGated, Role} from "./IOrgRegistry.sol";

// slither-disable-start timestamp: false positive: an index check against the records array (whose entries carry a time)
/// Party-building records (三会一课 meetings, study sessions, dues, membership stages) of party branches.
/// The branch is the sender's party_branch org, so a branch can only ever write its own records.
/// Kinds are an open uint8 numbering kept by the adapters (0 is invalid); a digest is recorded once.
contract PartyRecords is OrgGated {
    struct PartyRecord {
        bytes32 branchOrg;
        uint8 kind;
        bytes32 digest;
        address account;
        uint64 recordedAt;
    }

    error InvalidKind();
    error ZeroDigest();
    error DuplicateRecord(bytes32 digest);
    error IndexOutOfRange(uint256 index, uint256 count);

    event RecordAdded(
        uint256 indexed index, bytes32 indexed branchOrg, uint8 indexed kind, bytes32 digest, address account
    );

    PartyRecord[] private _records;
    mapping(bytes32 branchOrg => uint256[]) private _byBranch;
    mapping(bytes32 digest => uint256 indexPlusOne) private _byDigest;

    constructor(IOrgRegistry registry_) OrgGated(registry_) {}

    function addRecord(uint8 kind, bytes32 digest) external returns (uint256 index) {
        bytes32 org = _orgWithRole(Role.PartyBranch);
        if (kind == 0) revert InvalidKind();
        if (digest == bytes32(0)) revert ZeroDigest();
        if (_byDigest[digest] != 0) revert DuplicateRecord(digest);
        index = _records.length;
        _records.push(PartyRecord(org, kind, digest, msg.sender, uint64(block.timestamp)));
        _byBranch[org].push(index);
        _byDigest[digest] = index + 1;
        emit RecordAdded(index, org, kind, digest, msg.sender);
    }

    function recordCount() external view returns (uint256) {
        return _records.length;
    }

    function recordAt(uint256 index) public view returns (PartyRecord memory) {
        if (index >= _records.length) revert IndexOutOfRange(index, _records.length);
        return _records[index];
    }

    function branchRecordCount(bytes32 branchOrg) external view returns (uint256) {
        return _byBranch[branchOrg].length;
    }

    /// The i-th record of a branch, as (global index, record).
    function branchRecordAt(bytes32 branchOrg, uint256 i) external view returns (uint256, PartyRecord memory) {
        uint256[] storage list = _byBranch[branchOrg];
        if (i >= list.length) revert IndexOutOfRange(i, list.length);
        return (list[i], _records[list[i]]);
    }

    /// Whether a digest was recorded, and where (index is meaningless when not found).
    function findDigest(bytes32 digest) external view returns (bool found, uint256 index) {
        uint256 at = _byDigest[digest];
        return (at != 0, at == 0 ? 0 : at - 1);
    }
}
// slither-disable-end timestamp
