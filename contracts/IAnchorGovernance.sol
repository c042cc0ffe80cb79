// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// What the committee's proposals (OrgRegistry VoidAnchors, SetMaxAnchorGrowth) may do to a ProvenanceLog;
/// the log accepts these calls from its registry only.
interface IAnchorGovernance {
    /// Remove every anchor above `keepSize` (0 or an anchored size).
    function voidAnchorsAfter(uint64 keepSize) external;

    /// The most an anchor may grow the anchored tree size by.
    function setMaxGrowth(uint64 maxGrowth) external;
}
