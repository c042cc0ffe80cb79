// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, OrgGated, Role} from "./IOrgRegistry.sol";

// slither-disable-start timestamp: consents expire by block time; a validator's seconds of leeway are immaterial to their day-scale windows
/// Data-sharing workflow: a data owner registers datasets; a data user requests one; the owner consents
/// (scope + expiry) or not; the user's accesses are recorded only under a live consent, each access digest
/// once (a retried call after a lost receipt is refused rather than recorded twice). A revoked consent is
/// final: the user files a new request.
contract DataSharing is OrgGated {
    enum Status {
        None,
        Pending,
        Consented,
        Revoked
    }

    struct Dataset {
        bytes32 ownerOrg;
        bytes32 metadataDigest;
        uint64 registeredAt;
    }

    struct Request {
        Status status;
        bytes32 datasetId;
        bytes32 requesterOrg;
        bytes32 requestDigest;
        bytes32 scopeDigest;
        uint64 requestedAt;
        uint64 consentedAt;
        uint64 expiresAt;
        uint64 revokedAt;
        uint64 accessCount;
    }

    error DatasetExists(bytes32 datasetId);
    error DatasetNotFound(bytes32 datasetId);
    error RequestExists(bytes32 requestId);
    error RequestNotFound(bytes32 requestId);
    error NotDatasetOwner(bytes32 datasetId, bytes32 orgId);
    error NotRequester(bytes32 requestId, bytes32 orgId);
    error NotPending(bytes32 requestId, Status status);
    error ConsentNotLive(bytes32 requestId, Status status);
    error ConsentExpired(bytes32 requestId, uint64 expiresAt);
    error ExpiryNotInFuture(uint64 expiresAt, uint256 blockTimestamp);
    error ExpiryTooFar(uint64 expiresAt, uint256 latestAllowed);
    error DuplicateAccess(bytes32 accessDigest);

    event DatasetRegistered(bytes32 indexed datasetId, bytes32 indexed ownerOrg, bytes32 metadataDigest);
    event Requested(
        bytes32 indexed requestId, bytes32 indexed datasetId, bytes32 indexed requesterOrg, bytes32 digest
    );
    event ConsentGranted(
        bytes32 indexed requestId, bytes32 indexed ownerOrg, bytes32 scopeDigest, uint64 expiresAt, bytes32 digest
    );
    event ConsentWithdrawn(bytes32 indexed requestId, bytes32 indexed ownerOrg, bytes32 digest);
    event AccessRecorded(
        bytes32 indexed requestId,
        bytes32 indexed datasetId,
        bytes32 indexed requesterOrg,
        bytes32 accessDigest,
        uint64 accessIndex,
        address account
    );

    /// The longest a consent may last; a longer use is a new request and a new consent.
    uint64 public constant MAX_CONSENT = 5 * 365 days;

    mapping(bytes32 => Dataset) private _datasets;
    mapping(bytes32 => Request) private _requests;
    mapping(bytes32 accessDigest => bool) private _accessRecorded;

    constructor(IOrgRegistry registry_) OrgGated(registry_) {}

    function registerDataset(bytes32 datasetId, bytes32 metadataDigest) external {
        bytes32 org = _orgWithRole(Role.DataOwner);
        if (_datasets[datasetId].ownerOrg != bytes32(0)) revert DatasetExists(datasetId);
        _datasets[datasetId] = Dataset(org, metadataDigest, uint64(block.timestamp));
        emit DatasetRegistered(datasetId, org, metadataDigest);
    }

    function request(bytes32 requestId, bytes32 datasetId, bytes32 digest) external {
        bytes32 org = _orgWithRole(Role.DataUser);
        _dataset(datasetId);
        if (_requests[requestId].status != Status.None) revert RequestExists(requestId);
        Request storage r = _requests[requestId];
        r.status = Status.Pending;
        r.datasetId = datasetId;
        r.requesterOrg = org;
        r.requestDigest = digest;
        r.requestedAt = uint64(block.timestamp);
        emit Requested(requestId, datasetId, org, digest);
    }

    function consent(bytes32 requestId, bytes32 scopeDigest, uint64 expiresAt, bytes32 digest) external {
        (Request storage r, bytes32 org) = _asOwner(requestId);
        if (r.status != Status.Pending) revert NotPending(requestId, r.status);
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, block.timestamp);
        if (expiresAt > block.timestamp + MAX_CONSENT) revert ExpiryTooFar(expiresAt, block.timestamp + MAX_CONSENT);
        r.status = Status.Consented;
        r.scopeDigest = scopeDigest;
        r.consentedAt = uint64(block.timestamp);
        r.expiresAt = expiresAt;
        emit ConsentGranted(requestId, org, scopeDigest, expiresAt, digest);
    }

    function revokeConsent(bytes32 requestId, bytes32 digest) external {
        (Request storage r, bytes32 org) = _asOwner(requestId);
        if (r.status != Status.Consented) revert ConsentNotLive(requestId, r.status);
        r.status = Status.Revoked;
        r.revokedAt = uint64(block.timestamp);
        emit ConsentWithdrawn(requestId, org, digest);
    }

    function recordAccess(bytes32 requestId, bytes32 accessDigest) external {
        bytes32 org = _orgWithRole(Role.DataUser);
        // Before the consent checks: a repeat is named as such even once the consent has ended.
        if (_accessRecorded[accessDigest]) revert DuplicateAccess(accessDigest);
        Request storage r = _request(requestId);
        if (r.requesterOrg != org) revert NotRequester(requestId, org);
        if (r.status != Status.Consented) revert ConsentNotLive(requestId, r.status);
        if (block.timestamp >= r.expiresAt) revert ConsentExpired(requestId, r.expiresAt);
        _accessRecorded[accessDigest] = true;
        uint64 index = r.accessCount++;
        emit AccessRecorded(requestId, r.datasetId, org, accessDigest, index, msg.sender);
    }

    function datasetOf(bytes32 datasetId) external view returns (Dataset memory) {
        return _datasets[datasetId];
    }

    function requestOf(bytes32 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    function accessRecorded(bytes32 accessDigest) external view returns (bool) {
        return _accessRecorded[accessDigest];
    }

    function consentLive(bytes32 requestId) external view returns (bool) {
        Request storage r = _requests[requestId];
        return r.status == Status.Consented && block.timestamp < r.expiresAt;
    }

    function _dataset(bytes32 datasetId) private view returns (Dataset storage d) {
        d = _datasets[datasetId];
        if (d.ownerOrg == bytes32(0)) revert DatasetNotFound(datasetId);
    }

    function _request(bytes32 requestId) private view returns (Request storage r) {
        r = _requests[requestId];
        if (r.status == Status.None) revert RequestNotFound(requestId);
    }

    function _asOwner(bytes32 requestId) private view returns (Request storage r, bytes32 org) {
        org = _orgWithRole(Role.DataOwner);
        r = _request(requestId);
        if (_datasets[r.datasetId].ownerOrg != org) revert NotDatasetOwner(r.datasetId, org);
    }
}
// slither-disable-end timestamp
