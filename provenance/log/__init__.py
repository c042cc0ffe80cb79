"""The log's formats and proofs: the SM3 Merkle tree (RFC 9162), checkpoints as signed notes, witness
cosignatures, tiles, the tlog-witness protocol, acceptance receipts, evidence bundles, and the record log
that ties them together. Depends on the SDK's base modules only (records, crypto, errors)."""
