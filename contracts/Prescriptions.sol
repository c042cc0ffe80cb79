// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, OrgGated, Role} from "./IOrgRegistry.sol";

// slither-disable-start timestamp: expiry is by block time by design; a validator's seconds of leeway are immaterial to day-scale validity
/// E-prescription state machine: Issued -> Dispensed (once) | Revoked. The chain's order decides races,
/// so two pharmacies can never both dispense. Digests are SM3 digests of the signed off-chain records.
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

    event Issued(
        bytes32 indexed rxId, bytes32 indexed issuerOrg, bytes32 recordDigest, uint64 expiresAt, address account
    );
    event Dispensed(bytes32 indexed rxId, bytes32 indexed dispenserOrg, bytes32 recordDigest, address account);
    event Revoked(bytes32 indexed rxId, bytes32 indexed issuerOrg, bytes32 recordDigest, address account);

    /// The longest a prescription may stay dispensable: a year and a day covers long-term prescriptions;
    /// anything further is a mistake or an attack on the readers (a year-36812 expiry).
    uint64 public constant MAX_VALIDITY = 366 days;

    mapping(bytes32 rxId => Rx) private _rx;

    constructor(IOrgRegistry registry_) OrgGated(registry_) {}

    function issue(bytes32 rxId, bytes32 recordDigest, uint64 expiresAt) external {
        bytes32 org = _orgWithRole(Role.Hospital);
        if (_rx[rxId].status != Status.None) revert RxExists(rxId);
        if (expiresAt <= block.timestamp) revert ExpiryNotInFuture(expiresAt, block.timestamp);
        if (expiresAt > block.timestamp + MAX_VALIDITY) revert ExpiryTooFar(expiresAt, block.timestamp + MAX_VALIDITY);
        _rx[rxId] = Rx(Status.Issued, org, 0, expiresAt, uint64(block.timestamp), 0, 0, recordDigest, 0);
        emit Issued(rxId, org, recordDigest, expiresAt, msg.sender);
    }

    function dispense(bytes32 rxId, bytes32 recordDigest) external {
        bytes32 org = _orgWithRole(Role.Pharmacy);
        Rx storage rx = _open(rxId);
        if (block.timestamp >= rx.expiresAt) revert RxExpired(rxId, rx.expiresAt);
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
