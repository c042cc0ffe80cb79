"""Shancheng Provenance SDK: 国密 crypto, records, SM3 Merkle log proofs, checkpoints, bundles, verification.

The public surface is listed here; everything else is an implementation detail.
"""

from provenance.access_code import AccessCode
from provenance.bundle import EvidenceBundle
from provenance.client import AsyncClient, Client, IssuedPrescription
from provenance.errors import ProvenanceError, ReceiptInvalid, VerificationError
from provenance.receipt import AcceptanceReceipt, verify_receipt
from provenance.records import Envelope, SignedRecord, sign_envelope
from provenance.trust import TrustStore
from provenance.verify import Verifier

__all__ = [
    "AcceptanceReceipt",
    "AccessCode",
    "AsyncClient",
    "Client",
    "Envelope",
    "EvidenceBundle",
    "IssuedPrescription",
    "ProvenanceError",
    "ReceiptInvalid",
    "SignedRecord",
    "TrustStore",
    "VerificationError",
    "Verifier",
    "sign_envelope",
    "verify_receipt",
]
