// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IOrgRegistry, Role} from "./IOrgRegistry.sol";
import {SensorStations} from "./SensorStations.sol";

/// A gas network's data loggers (数据采集器: the stations of SensorStations), each registered, suspended and
/// operated by the gas_utility org whose sensors it reads (gas sources, pipeline pressure and flow sensors,
/// customer meters), which anchors its batches. The gas_utility role itself is the committee's to grant.
contract GasNetwork is SensorStations {
    constructor(IOrgRegistry registry_) SensorStations(registry_, Role.GasUtility) {}

    /// A data logger of the caller's organisation.
    function registerLogger(bytes32 loggerId, bytes32 metadataDigest) external {
        _register(loggerId, _orgWithRole(Role.GasUtility), metadataDigest);
    }

    /// Suspends or resumes one of the caller's organisation's loggers (a suspended one anchors nothing).
    function setLoggerActive(bytes32 loggerId, bool active) external {
        bytes32 org = _orgWithRole(Role.GasUtility);
        if (_station(loggerId).operatorOrg != org) revert NotStationOperator(loggerId, org);
        _setActive(loggerId, active);
    }
}
