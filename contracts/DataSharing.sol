// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, OrgGated, Role} from "./IOrgRegistry.sol";

// slither-disable-start timestamp: consents expire by block time; a validator's seconds of leeway are immaterial to their day-scale windows
/// Data-sharing workflow: a data owner registers datasets; a data user requests one; the owner consents
/// (scope, purpose + expiry) or not; the user's accesses are recorded only under a live consent, each access
/// digest once (a retried call after a lost receipt is refused rather than recorded twice). A revoked
/// consent is final: the user files a new request.
///
/// The rules several organisations agree on live here too (issue #18): a dataset's owner opens it; an
/// analyst registers a derived dataset only when each input is its own, open to it, or under its live
/// consent for the analysis's purpose; a settlement of a request's metered accesses, proposed by one side,
/// stays pending until the other side countersigns its terms.
contract DataSharing is OrgGated {
    enum Status {
        None,
        Pending,
        Consented,
        Revoked
    }

    enum SettlementStatus {
        None,
        Pending,
        Settled
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
        bytes32 purposeDigest; // SM3 of the consented purpose: a derivation's purpose must be this one
        uint64 settledAccesses; // accesses some settlement of this request already counts
    }

    struct Settlement {
        SettlementStatus status;
        bytes32 requestId;
        bytes32 proposerOrg;
        bytes32 counterpartOrg;
        bytes32 termsDigest; // the proposal's payload digest: what the countersignature must name
        uint64 accessCount;
        uint128 amount;
        uint64 proposedAt;
        uint64 settledAt;
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
    error InputsInvalid(uint256 inputs, uint256 requestIds);
    error InputNotFound(bytes32 datasetId);
    error InputNotCovered(bytes32 datasetId, bytes32 requestId);
    error SettlementExists(bytes32 settlementId);
    error SettlementNotFound(bytes32 settlementId);
    error SettlementNotPending(bytes32 settlementId, SettlementStatus status);
    error NotSettlementParty(bytes32 settlementId, bytes32 orgId);
    error NotSettlementProvider(bytes32 settlementId, bytes32 orgId);
    error SettlementAmountMismatch(uint128 amount, uint256 expected);
    error SettlementMeterExceeded(bytes32 requestId, uint64 accessCount, uint64 unsettled);
    error SettlementTermsMismatch(bytes32 settlementId, bytes32 termsDigest);

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

    event DatasetOpened(bytes32 indexed datasetId, bytes32 indexed ownerOrg, bool isPublic, bytes32 digest);
    event DatasetDerived(
        bytes32 indexed datasetId, bytes32 indexed analystOrg, bytes32 purposeDigest, bytes32[] inputs, bytes32 digest
    );
    event SettlementProposed(
        bytes32 indexed settlementId,
        bytes32 indexed requestId,
        bytes32 indexed proposerOrg,
        bytes32 counterpartOrg,
        uint64 accessCount,
        uint128 amount,
        bytes32 termsDigest,
        bytes32 digest
    );
    event SettlementCountersigned(bytes32 indexed settlementId, bytes32 indexed counterpartOrg, bytes32 digest);

    /// The most inputs one derivation names (the gateway's payload bound too).
    uint256 public constant MAX_INPUTS = 64;

    /// The longest a consent may last; a longer use is a new request and a new consent.
    uint64 public constant MAX_CONSENT = 5 * 365 days;

    mapping(bytes32 => Dataset) private _datasets;
    mapping(bytes32 => Request) private _requests;
    mapping(bytes32 accessDigest => bool) private _accessRecorded;
    mapping(bytes32 datasetId => bool) private _public;
    mapping(bytes32 datasetId => mapping(bytes32 orgId => bool)) private _openTo;
    mapping(bytes32 => Settlement) private _settlements;

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

    function consent(bytes32 requestId, bytes32 scopeDigest, bytes32 purposeDigest, uint64 expiresAt, bytes32 digest)
        external
    {
        (Request storage r, bytes32 org) = _asOwner(requestId);
        if (r.status != Status.Pending) revert NotPending(requestId, r.status);
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, block.timestamp);
        if (expiresAt > block.timestamp + MAX_CONSENT) revert ExpiryTooFar(expiresAt, block.timestamp + MAX_CONSENT);
        r.status = Status.Consented;
        r.scopeDigest = scopeDigest;
        r.purposeDigest = purposeDigest;
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

    /// The dataset's owner publishes it: to everyone, or to the organisations named (cumulative).
    function openDataset(bytes32 datasetId, bool isPublic, bytes32[] calldata to, bytes32 digest) external {
        bytes32 org = _sharingOrg();
        if (_dataset(datasetId).ownerOrg != org) revert NotDatasetOwner(datasetId, org);
        if (isPublic) _public[datasetId] = true;
        for (uint256 i = 0; i < to.length; i++) {
            _openTo[datasetId][to[i]] = true;
        }
        emit DatasetOpened(datasetId, org, isPublic, digest);
    }

    /// An analysis output, owned by its analyst: each input its own, open to it, or used under the
    /// analyst's live consent for that dataset whose purpose is the analysis's (`requestIds[i]`); an input
    /// not its own that names a consent is covered by that consent alone, open or not.
    function registerDerived(
        bytes32 datasetId,
        bytes32 purposeDigest,
        bytes32[] calldata inputs,
        bytes32[] calldata requestIds,
        bytes32 digest
    ) external {
        bytes32 org = _sharingOrg();
        if (inputs.length == 0 || inputs.length > MAX_INPUTS || inputs.length != requestIds.length) {
            revert InputsInvalid(inputs.length, requestIds.length);
        }
        if (_datasets[datasetId].ownerOrg != bytes32(0)) revert DatasetExists(datasetId);
        for (uint256 i = 0; i < inputs.length; i++) {
            _covered(inputs[i], requestIds[i], org, purposeDigest);
        }
        _datasets[datasetId] = Dataset(org, digest, uint64(block.timestamp));
        emit DatasetDerived(datasetId, org, purposeDigest, inputs, digest);
    }

    /// The provider (the request's dataset owner) proposes to settle `accessCount` of the accesses recorded
    /// under it, at `unitPrice` each; pending until the requester countersigns.
    function proposeSettlement(
        bytes32 settlementId,
        bytes32 requestId,
        uint64 accessCount,
        uint128 unitPrice,
        uint128 amount,
        bytes32 termsDigest,
        bytes32 digest
    ) external {
        bytes32 org = _sharingOrg();
        if (_settlements[settlementId].status != SettlementStatus.None) revert SettlementExists(settlementId);
        Request storage r = _request(requestId);
        bytes32 provider = _datasets[r.datasetId].ownerOrg;
        if (org != provider && org != r.requesterOrg) revert NotSettlementParty(settlementId, org);
        // The provider bills, the requester countersigns: a requester's proposal would take the unsettled
        // accesses (the meter bound below) at its own price and hold the provider's billing pending.
        if (org != provider) revert NotSettlementProvider(settlementId, org);
        uint256 expected = uint256(accessCount) * unitPrice;
        if (amount != expected) revert SettlementAmountMismatch(amount, expected);
        // No access is settled twice: the settlements of a request together count at most its accesses.
        uint64 unsettled = r.accessCount - r.settledAccesses;
        if (accessCount > unsettled) revert SettlementMeterExceeded(requestId, accessCount, unsettled);
        r.settledAccesses += accessCount;
        bytes32 counterpart = org == provider ? r.requesterOrg : provider;
        _settlements[settlementId] = Settlement(
            SettlementStatus.Pending, requestId, org, counterpart, termsDigest, accessCount, amount,
            uint64(block.timestamp), 0
        );
        emit SettlementProposed(settlementId, requestId, org, counterpart, accessCount, amount, termsDigest, digest);
    }

    /// The counterpart accepts the pending settlement whose terms digest it names: settled.
    function countersignSettlement(bytes32 settlementId, bytes32 termsDigest, bytes32 digest) external {
        bytes32 org = _sharingOrg();
        Settlement storage s = _settlements[settlementId];
        if (s.status == SettlementStatus.None) revert SettlementNotFound(settlementId);
        if (s.status != SettlementStatus.Pending) revert SettlementNotPending(settlementId, s.status);
        if (org != s.counterpartOrg) revert NotSettlementParty(settlementId, org);
        if (termsDigest != s.termsDigest) revert SettlementTermsMismatch(settlementId, termsDigest);
        s.status = SettlementStatus.Settled;
        s.settledAt = uint64(block.timestamp);
        emit SettlementCountersigned(settlementId, org, digest);
    }

    function settlementOf(bytes32 settlementId) external view returns (Settlement memory) {
        return _settlements[settlementId];
    }

    function openTo(bytes32 datasetId, bytes32 orgId) external view returns (bool) {
        return _public[datasetId] || _openTo[datasetId][orgId];
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

    function _covered(bytes32 input, bytes32 requestId, bytes32 org, bytes32 purposeDigest) private view {
        Dataset storage d = _datasets[input];
        if (d.ownerOrg == bytes32(0)) revert InputNotFound(input);
        if (d.ownerOrg == org) return;
        // A named consent is the input's basis even where the input is open to the analyst: it must cover
        // the use (the output is then bound to its purpose, a rule of the gateway's).
        if (requestId == bytes32(0) && (_public[input] || _openTo[input][org])) return;
        Request storage r = _requests[requestId];
        if (r.datasetId != input || r.requesterOrg != org || r.status == Status.None) {
            revert InputNotCovered(input, requestId);
        }
        if (r.status != Status.Consented) revert ConsentNotLive(requestId, r.status);
        if (block.timestamp >= r.expiresAt) revert ConsentExpired(requestId, r.expiresAt);
        if (r.purposeDigest != purposeDigest) revert InputNotCovered(input, requestId);
    }

    /// Either side of a sharing relation: a data owner or a data user (an analyst owns what it derives).
    function _sharingOrg() private view returns (bytes32 orgId) {
        Role actual;
        (orgId, actual) = registry.accountInfo(msg.sender);
        if (actual != Role.DataOwner && actual != Role.DataUser) revert Unauthorized(msg.sender, Role.DataUser);
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
