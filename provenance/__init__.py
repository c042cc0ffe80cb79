"""Shancheng Provenance SDK: 国密 crypto, records, SM3 Merkle log proofs, checkpoints, bundles, verification."""
