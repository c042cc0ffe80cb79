// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, OrgGated, Role} from "./IOrgRegistry.sol";

// slither-disable-start timestamp: batch periods are bounded by block time (an hour of clock lead); seconds of validator leeway are immaterial
/// Sensor stations (a monitoring point, a gas operator's data logger), each operated by an org of one role,
/// and per-station batch anchors: the Merkle root of the readings of one period. The readings themselves go
/// through the provenance log; periods of a station never overlap and only move forward. A domain contract
/// decides who registers and suspends its stations (EnvMonitoring, GasNetwork).
abstract contract SensorStations is OrgGated {
    struct Station {
        bytes32 operatorOrg;
        bytes32 metadataDigest;
        bool active;
        uint64 registeredAt;
        uint64 lastPeriodEnd;
        uint64 batchCount;
    }

    struct Batch {
        uint64 periodStart;
        uint64 periodEnd;
        bytes32 merkleRoot;
        uint32 count;
        address account;
        uint64 anchoredAt;
    }

    error StationExists(bytes32 stationId);
    error StationNotFound(bytes32 stationId);
    error StationInactive(bytes32 stationId);
    error OperatorNotStation(bytes32 orgId);
    error NotStationOperator(bytes32 stationId, bytes32 orgId);
    error InvalidPeriod(uint64 periodStart, uint64 periodEnd);
    error PeriodOverlap(uint64 periodStart, uint64 lastPeriodEnd);
    error EmptyBatch();
    error PeriodInFuture(uint64 periodEnd, uint256 latestAllowed);
    error IndexOutOfRange(uint256 index, uint256 count);

    event StationRegistered(bytes32 indexed stationId, bytes32 indexed operatorOrg, bytes32 metadataDigest);
    event StationStatusChanged(bytes32 indexed stationId, bool active);
    event BatchAnchored(
        bytes32 indexed stationId,
        uint64 indexed batchIndex,
        uint64 periodStart,
        uint64 periodEnd,
        bytes32 merkleRoot,
        uint32 count
    );

    /// A batch covers readings already taken: its end may lead the chain's clock by this much (station
    /// clocks drift), no more, or one far-future period would block the station's later batches.
    uint64 public constant MAX_CLOCK_LEAD = 1 hours;

    /// The role of the orgs that operate stations and anchor their batches.
    Role public immutable operatorRole;

    mapping(bytes32 => Station) private _stations;
    mapping(bytes32 => Batch[]) private _batches;
    bytes32[] private _stationIds;

    constructor(IOrgRegistry registry_, Role operatorRole_) OrgGated(registry_) {
        operatorRole = operatorRole_;
    }

    /// Anchors [periodStart, periodEnd) of a station's readings; by the operating org's accounts only.
    function anchorBatch(bytes32 stationId, uint64 periodStart, uint64 periodEnd, bytes32 merkleRoot, uint32 count)
        external
    {
        bytes32 org = _orgWithRole(operatorRole);
        Station storage s = _station(stationId);
        if (s.operatorOrg != org) revert NotStationOperator(stationId, org);
        if (!s.active) revert StationInactive(stationId);
        if (periodStart >= periodEnd) revert InvalidPeriod(periodStart, periodEnd);
        if (periodStart < s.lastPeriodEnd) revert PeriodOverlap(periodStart, s.lastPeriodEnd);
        if (periodEnd > block.timestamp + MAX_CLOCK_LEAD) {
            revert PeriodInFuture(periodEnd, block.timestamp + MAX_CLOCK_LEAD);
        }
        if (count == 0) revert EmptyBatch();
        _batches[stationId].push(Batch(periodStart, periodEnd, merkleRoot, count, msg.sender, uint64(block.timestamp)));
        s.lastPeriodEnd = periodEnd;
        uint64 index = s.batchCount++;
        emit BatchAnchored(stationId, index, periodStart, periodEnd, merkleRoot, count);
    }

    function stationOf(bytes32 stationId) external view returns (Station memory) {
        return _stations[stationId];
    }

    function stationIds() external view returns (bytes32[] memory) {
        return _stationIds;
    }

    function batchCount(bytes32 stationId) external view returns (uint256) {
        return _batches[stationId].length;
    }

    function batchAt(bytes32 stationId, uint256 index) external view returns (Batch memory) {
        uint256 n = _batches[stationId].length;
        if (index >= n) revert IndexOutOfRange(index, n);
        return _batches[stationId][index];
    }

    /// A new station operated by `operatorOrg`, which must hold the operator role.
    function _register(bytes32 stationId, bytes32 operatorOrg, bytes32 metadataDigest) internal {
        if (_stations[stationId].operatorOrg != bytes32(0)) revert StationExists(stationId);
        if (registry.orgRoleOf(operatorOrg) != operatorRole) revert OperatorNotStation(operatorOrg);
        _stations[stationId] = Station(operatorOrg, metadataDigest, true, uint64(block.timestamp), 0, 0);
        _stationIds.push(stationId);
        emit StationRegistered(stationId, operatorOrg, metadataDigest);
    }

    function _setActive(bytes32 stationId, bool active) internal {
        _station(stationId).active = active;
        emit StationStatusChanged(stationId, active);
    }

    function _station(bytes32 stationId) internal view returns (Station storage s) {
        s = _stations[stationId];
        if (s.operatorOrg == bytes32(0)) revert StationNotFound(stationId);
    }
}
// slither-disable-end timestamp
