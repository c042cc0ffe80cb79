// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, Role} from "./IOrgRegistry.sol";
import {SensorStations} from "./SensorStations.sol";

/// Monitoring stations, registered and suspended by the environmental bureau, each operated by a
/// monitoring_station org that anchors its batches (SensorStations).
contract EnvMonitoring is SensorStations {
    constructor(IOrgRegistry registry_) SensorStations(registry_, Role.MonitoringStation) {}

    function registerStation(bytes32 stationId, bytes32 operatorOrg, bytes32 metadataDigest) external {
        _orgWithRole(Role.EnvBureau);
        _register(stationId, operatorOrg, metadataDigest);
    }

    function setStationActive(bytes32 stationId, bool active) external {
        _orgWithRole(Role.EnvBureau);
        _setActive(stationId, active);
    }
}
