"""Shancheng Provenance SDK: 国密 crypto, records, SM3 Merkle log proofs, checkpoints, bundles, verification.

The public surface is listed here; everything else is an implementation detail.
"""

# First, before anything imports py_ecc or py-evm: holds the recursion limit at a value the C stack
# holds (see the module), for every entry point (node, gateway, CLIs all import this package).
import provenance._internal.stack  # noqa: F401  # isort: skip
from provenance.access_code import AccessCode
from provenance.client import AsyncClient, Client, IssuedPrescription
from provenance.errors import ProvenanceError, ReceiptInvalid, VerificationError
from provenance.log.bundle import EvidenceBundle
from provenance.log.receipt import AcceptanceReceipt, verify_receipt
from provenance.records import Envelope, SignedRecord, sign_envelope
from provenance.verification.trust import TrustStore
from provenance.verification.verify import Verifier

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
