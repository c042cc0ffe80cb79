// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, OrgGated, Role} from "./IOrgRegistry.sol";

// slither-disable-start timestamp: expiry is by block time by design; a validator's seconds of leeway are immaterial to day-scale validity
/// E-prescription state machine: Issued -> [Reviewed by a pharmacist (审方)] -> Dispensed (once) | Revoked,
/// then Settled (once) by 医保. The chain's order decides races, so two pharmacies can never both dispense,
/// nor both hand over one box: each dispense carries the SM3 digests of its boxes' normalised drug
/// traceability codes (药品追溯码), and a code dispensed once anywhere in the network is refused after.
/// Digests are SM3 digests of the signed off-chain records.
contract Prescriptions is OrgGated {
    enum Status {
        None,
        Issued,
        Dispensed,
        Revoked
    }

    struct Rx {
        Status status;
        bytes32 issuerOrg;
        bytes32 dispenserOrg;
        uint64 expiresAt;
        uint64 issuedAt;
        uint64 dispensedAt;
        uint64 revokedAt;
        bytes32 issueDigest;
        bytes32 closeDigest; // the dispense or revoke record
    }

    error RxExists(bytes32 rxId);
    error RxNotFound(bytes32 rxId);
    error AlreadyDispensed(bytes32 rxId);
    error RxIsRevoked(bytes32 rxId);
    error RxExpired(bytes32 rxId, uint64 expiresAt);
    error ExpiryNotInFuture(uint64 expiresAt, uint256 blockTimestamp);
    error ExpiryTooFar(uint64 expiresAt, uint256 latestAllowed);
    error NotIssuer(bytes32 rxId, bytes32 orgId);
    error NotReviewed(bytes32 rxId);
    error ReviewRejected(bytes32 rxId, bytes32 reviewDigest);
    error AlreadyReviewed(bytes32 rxId);
    error TraceCodeReused(bytes32 codeDigest, bytes32 rxId, bytes32 dispenseDigest);
    error TraceCodeDuplicated(bytes32 codeDigest);
    error NotDispensed(bytes32 rxId);
    error AlreadySettled(bytes32 rxId);
    error SettingLocked();
    error NotDeployer(address account);

    enum Review {
        None,
        Approved,
        Rejected
    }

    struct ReviewEntry {
        Review decision;
        bytes32 reviewerOrg;
        bytes32 recordDigest;
    }

    struct CodeUse {
        bytes32 rxId;
        bytes32 dispenseDigest;
    }

    struct Settlement {
        bytes32 insurerOrg;
        bytes32 recordDigest;
    }

    event Issued(
        bytes32 indexed rxId, bytes32 indexed issuerOrg, bytes32 recordDigest, uint64 expiresAt, address account
    );
    event Dispensed(bytes32 indexed rxId, bytes32 indexed dispenserOrg, bytes32 recordDigest, address account);
    event Revoked(bytes32 indexed rxId, bytes32 indexed issuerOrg, bytes32 recordDigest, address account);
    event Reviewed(
        bytes32 indexed rxId, bytes32 indexed reviewerOrg, bytes32 recordDigest, bool approved, address account
    );
    event Settled(bytes32 indexed rxId, bytes32 indexed insurerOrg, bytes32 recordDigest, address account);
    event ReviewRequiredSet(bool required);

    /// The longest a prescription may stay dispensable: a year and a day covers long-term prescriptions;
    /// anything further is a mistake or an attack on the readers (a year-36812 expiry).
    uint64 public constant MAX_VALIDITY = 366 days;

    /// Whether a dispense needs an approved review first (a deployment setting, default on). A rejected
    /// review blocks the dispense either way.
    bool public reviewRequired = true;
    /// May set ``reviewRequired`` once, before the first prescription: a deployment choice, never a switch
    /// anyone can flip on live prescriptions.
    address private immutable _deployer;
    bool private _settingLocked;

    mapping(bytes32 rxId => Rx) private _rx;
    mapping(bytes32 rxId => ReviewEntry) private _review;
    mapping(bytes32 codeDigest => CodeUse) private _codes;
    mapping(bytes32 rxId => Settlement) private _settlement;

    constructor(IOrgRegistry registry_) OrgGated(registry_) {
        _deployer = msg.sender;
    }

    /// By the deployer, before the first prescription is issued.
    function setReviewRequired(bool required) external {
        if (msg.sender != _deployer) revert NotDeployer(msg.sender);
        if (_settingLocked) revert SettingLocked();
        reviewRequired = required;
        emit ReviewRequiredSet(required);
    }

    function issue(bytes32 rxId, bytes32 recordDigest, uint64 expiresAt) external {
        bytes32 org = _orgWithRole(Role.Hospital);
        if (_rx[rxId].status != Status.None) revert RxExists(rxId);
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, block.timestamp);
        if (expiresAt > block.timestamp + MAX_VALIDITY) revert ExpiryTooFar(expiresAt, block.timestamp + MAX_VALIDITY);
        _settingLocked = true;
        _rx[rxId] = Rx(Status.Issued, org, 0, expiresAt, uint64(block.timestamp), 0, 0, recordDigest, 0);
        emit Issued(rxId, org, recordDigest, expiresAt, msg.sender);
    }

    /// A licensed pharmacist's review (审方) of an open, unexpired prescription: once.
    function review(bytes32 rxId, bytes32 recordDigest, bool approved) external {
        bytes32 org = _orgWithRole(Role.Pharmacist);
        Rx storage rx = _open(rxId);
        if (block.timestamp >= rx.expiresAt) revert RxExpired(rxId, rx.expiresAt);
        ReviewEntry storage r = _review[rxId];
        if (r.decision != Review.None) revert AlreadyReviewed(rxId);
        r.decision = approved ? Review.Approved : Review.Rejected;
        r.reviewerOrg = org;
        r.recordDigest = recordDigest;
        emit Reviewed(rxId, org, recordDigest, approved, msg.sender);
    }

    function dispense(bytes32 rxId, bytes32 recordDigest) external {
        _dispense(rxId, recordDigest, new bytes32[](0));
    }

    /// A dispense handing over boxes whose traceability codes have the SM3 digests ``codeDigests``.
    function dispenseWithCodes(bytes32 rxId, bytes32 recordDigest, bytes32[] calldata codeDigests) external {
        _dispense(rxId, recordDigest, codeDigests);
    }

    /// 医保's settlement of a dispensed prescription: once.
    function settle(bytes32 rxId, bytes32 recordDigest) external {
        bytes32 org = _orgWithRole(Role.Insurer);
        Rx storage rx = _rx[rxId];
        if (rx.status == Status.None) revert RxNotFound(rxId);
        if (rx.status == Status.Revoked) revert RxIsRevoked(rxId);
        if (rx.status != Status.Dispensed) revert NotDispensed(rxId);
        Settlement storage s = _settlement[rxId];
        if (s.recordDigest != 0) revert AlreadySettled(rxId);
        s.insurerOrg = org;
        s.recordDigest = recordDigest;
        emit Settled(rxId, org, recordDigest, msg.sender);
    }

    function reviewOf(bytes32 rxId) external view returns (ReviewEntry memory) {
        return _review[rxId];
    }

    function settlementOf(bytes32 rxId) external view returns (Settlement memory) {
        return _settlement[rxId];
    }

    /// The dispense that handed over the box whose normalised code has SM3 digest ``codeDigest`` (zero: none).
    function codeUse(bytes32 codeDigest) external view returns (CodeUse memory) {
        return _codes[codeDigest];
    }

    function _dispense(bytes32 rxId, bytes32 recordDigest, bytes32[] memory codeDigests) private {
        bytes32 org = _orgWithRole(Role.Pharmacy);
        Rx storage rx = _open(rxId);
        if (block.timestamp >= rx.expiresAt) revert RxExpired(rxId, rx.expiresAt);
        ReviewEntry storage r = _review[rxId];
        if (r.decision == Review.Rejected) revert ReviewRejected(rxId, r.recordDigest);
        if (reviewRequired && r.decision != Review.Approved) revert NotReviewed(rxId);
        for (uint256 i = 0; i < codeDigests.length; ++i) {
            CodeUse storage use = _codes[codeDigests[i]];
            if (use.dispenseDigest == recordDigest) revert TraceCodeDuplicated(codeDigests[i]);
            if (use.dispenseDigest != 0) revert TraceCodeReused(codeDigests[i], use.rxId, use.dispenseDigest);
            use.rxId = rxId;
            use.dispenseDigest = recordDigest;
        }
        rx.status = Status.Dispensed;
        rx.dispenserOrg = org;
        rx.dispensedAt = uint64(block.timestamp);
        rx.closeDigest = recordDigest;
        emit Dispensed(rxId, org, recordDigest, msg.sender);
    }

    /// By the issuing hospital only, any time before dispense (also after expiry, to close it explicitly).
    function revoke(bytes32 rxId, bytes32 recordDigest) external {
        bytes32 org = _orgWithRole(Role.Hospital);
        Rx storage rx = _open(rxId);
        if (rx.issuerOrg != org) revert NotIssuer(rxId, org);
        rx.status = Status.Revoked;
        rx.revokedAt = uint64(block.timestamp);
        rx.closeDigest = recordDigest;
        emit Revoked(rxId, org, recordDigest, msg.sender);
    }

    /// The full record (all zero with status None for an unknown id).
    function statusOf(bytes32 rxId) external view returns (Rx memory) {
        return _rx[rxId];
    }

    /// Whether a pharmacy could dispense it now.
    function isDispensable(bytes32 rxId) external view returns (bool) {
        Rx storage rx = _rx[rxId];
        return rx.status == Status.Issued && block.timestamp < rx.expiresAt;
    }

    function _open(bytes32 rxId) private view returns (Rx storage rx) {
        rx = _rx[rxId];
        if (rx.status == Status.None) revert RxNotFound(rxId);
        if (rx.status == Status.Dispensed) revert AlreadyDispensed(rxId);
        if (rx.status == Status.Revoked) revert RxIsRevoked(rxId);
    }
}
// slither-disable-end timestamp
