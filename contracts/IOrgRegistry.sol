// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// Organisation roles. The numbers are part of the ABI (uint8): append only, never reorder.
enum Role {
    None,
    Hospital,
    Pharmacy,
    DataOwner,
    DataUser,
    EnvBureau,
    MonitoringStation,
    PartyBranch,
    Auditor,
    Regulator,
    LogOperator,
    Pharmacist, // a licensed pharmacist (执业药师) reviewing prescriptions (审方)
    Insurer, // a medical insurance bureau (医保) settling dispenses
    GasUtility // a gas utility (燃气公司) operating data loggers of its gas network
}

/// What the domain contracts (and the node's permissioning) read from the registry.
interface IOrgRegistry {
    /// The account's organisation and its effective role (Role.None if unbound or the org is suspended).
    function accountInfo(address account) external view returns (bytes32 orgId, Role role);

    /// The organisation's effective role (Role.None if unknown or suspended).
    function orgRoleOf(bytes32 orgId) external view returns (Role);

    /// True for accounts of active organisations and for committee members.
    function isPermitted(address account) external view returns (bool);
}

/// Base for contracts whose functions are open to the accounts of one role.
abstract contract OrgGated {
    error Unauthorized(address account, Role required);

    IOrgRegistry public immutable registry;

    constructor(IOrgRegistry registry_) {
        registry = registry_;
    }

    /// Reverts unless msg.sender is an account of an active org with `role`; returns that org.
    function _orgWithRole(Role role) internal view returns (bytes32 orgId) {
        Role actual;
        (orgId, actual) = registry.accountInfo(msg.sender);
        if (actual != role) revert Unauthorized(msg.sender, role);
    }
}
