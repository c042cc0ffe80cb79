"""One error root for the whole project, with stable machine-readable codes.

The gateway maps these to HTTP in one handler, the node to JSON-RPC in one table, the CLI to one line
and a non-zero exit. A code never changes once published: outside tools match on it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ProvenanceError(Exception):
    """Root of every error this project raises on purpose."""

    code: ClassVar[str] = "PROVENANCE_ERROR"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


# --- crypto -------------------------------------------------------------------------------------------


class CryptoError(ProvenanceError):
    code = "CRYPTO_ERROR"


class KeyInvalid(CryptoError):
    """A key that cannot be parsed, is of the wrong curve, or is not on the curve."""

    code = "KEY_INVALID"


class SignatureInvalid(CryptoError):
    """A signature that is malformed or does not verify."""

    code = "SIGNATURE_INVALID"


class BackendUnavailable(CryptoError):
    code = "CRYPTO_BACKEND_UNAVAILABLE"
    http_status = 500


# --- input formats -----------------------------------------------------------------------------------


class FormatError(ProvenanceError):
    """Input that is not of the expected format (JSON, PEM, base64, note text, ...)."""

    code = "FORMAT_INVALID"


class DuplicateKey(FormatError):
    """A JSON object names a key twice: parsers disagree on which copy counts, so the input is refused."""

    code = "JSON_DUPLICATE_KEY"


class SchemaInvalid(FormatError):
    code = "SCHEMA_INVALID"


class RecordInvalid(FormatError):
    code = "RECORD_INVALID"


class PayloadInvalid(FormatError):
    code = "PAYLOAD_INVALID"


class TraceCodeInvalid(PayloadInvalid):
    """A drug traceability code of no known form, a GS1 code with a wrong check digit, a code listed twice
    in one dispense, or a count of codes other than the boxes dispensed."""

    code = "TRACE_CODE_INVALID"


class TraceCodeAmbiguous(TraceCodeInvalid):
    """A GS1 element string scanned without its FNC1 (GS) separators that reads as more than one box."""

    code = "TRACE_CODE_AMBIGUOUS"


class AccessCodeDigestMissing(PayloadInvalid):
    """An ``rx.issue`` without its access code's digest: no pharmacy could read or dispense it (the
    hospital's SDK makes the code, ``Client.issue_prescription``)."""

    code = "ACCESS_CODE_DIGEST_MISSING"


class AccessCodeMalformed(FormatError):
    """Text that is not an access code (20 Crockford base32 characters, dashes and spaces ignored)."""

    code = "ACCESS_CODE_MALFORMED"


# --- HTTP requests (every server of the project: gateway, witness) -----------------------------------


class BodyTooLarge(ProvenanceError):
    """The request body is larger than the server takes: refused unread."""

    code = "BODY_TOO_LARGE"
    http_status = 413


class BodyTimeout(ProvenanceError):
    """The request body did not arrive within the body time-out (a slow or stalled client)."""

    code = "BODY_TIMEOUT"
    http_status = 408


# --- verification ------------------------------------------------------------------------------------


class VerificationError(ProvenanceError):
    """A verification step failed; ``step`` names it (see ``provenance.verification.verify.STEPS``)."""

    code = "VERIFICATION_FAILED"
    step: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["step"] = self.step
        return d


class DigestMismatch(VerificationError):
    code = "DIGEST_MISMATCH"
    step = "digest"


class PayloadDigestMismatch(VerificationError):
    code = "PAYLOAD_DIGEST_MISMATCH"
    step = "payload"


class ItemProofInvalid(VerificationError):
    """A batch item (a reading of an ``env.batch``) is not a leaf of the Merkle root its signed batch names:
    the item altered, its proof wrong, or the batch payload missing or another batch's."""

    code = "ITEM_PROOF_INVALID"
    step = "item"


class RecordSignatureInvalid(VerificationError):
    code = "SIGNATURE_INVALID"
    step = "signature"


class ProofInvalid(VerificationError):
    code = "PROOF_INVALID"
    step = "inclusion"


class ConsistencyInvalid(VerificationError):
    code = "CONSISTENCY_INVALID"
    step = "consistency"


class CheckpointInvalid(VerificationError):
    code = "CHECKPOINT_INVALID"
    step = "checkpoint"


class WitnessQuorumMissing(VerificationError):
    """A checkpoint without the cosignatures the trust file's witness policy asks for (k of n witnesses).

    ``details``: ``cosigned_by`` (the trusted witnesses whose cosignatures verified), ``quorum`` and
    ``witnesses`` (every trusted witness).
    """

    code = "WITNESS_QUORUM_MISSING"
    step = "checkpoint"


class AnchorInvalid(VerificationError):
    code = "ANCHOR_INVALID"
    step = "anchor"


class BatchAnchorInvalid(VerificationError):
    """A batch item's ``batch_anchor`` does not hold: it names another root than the signed batch, another
    chain than the pinned one, or (looked up on chain) no such anchor event in its transaction."""

    code = "BATCH_ANCHOR_INVALID"
    step = "batch_anchor"


class HistoryInconsistent(AnchorInvalid):
    """The anchored checkpoint is not on one history with the anchors around it (a forked log)."""

    code = "HISTORY_INCONSISTENT"


class ConsistencyProofMalformed(AnchorInvalid):
    """The proof source (the gateway) served a consistency proof of the wrong shape (length, hash size):
    its fault, which says nothing about the log's history."""

    code = "CONSISTENCY_PROOF_MALFORMED"


class ReceiptInvalid(VerificationError):
    """An acceptance receipt that does not parse, is not signed by a pinned log key, or is for another record.

    ``details["check"]`` says which: ``format``, ``inclusion`` (a batch receipt's proof), ``log_key``,
    ``signature``, ``origin`` or ``record``.
    """

    code = "RECEIPT_INVALID"
    step = "receipt"


class SignerInvalid(VerificationError):
    """The signer named in a bundle is not the one trusted for that organisation."""

    code = "SIGNER_UNTRUSTED"
    step = "signer"


class ListingMismatch(VerificationError):
    """A bundle fetched for a listed record is another record, or says otherwise than the listing."""

    code = "LISTING_MISMATCH"
    step = "listing"


class ListingInvalid(VerificationError):
    """A history listing that cannot be one finite listing (a cursor that does not advance, an empty page
    that says more follow): the reading stops here rather than loop or show repeats."""

    code = "LISTING_INVALID"
    step = "listing"


class CertificateMismatch(VerificationError):
    """A certificate's printed values are not those of the evidence bundle embedded in it."""

    code = "CERTIFICATE_MISMATCH"
    step = "certificate"


class CertificateRefused(VerificationError):
    """No certificate for a record that does not verify at issue time; ``step`` names the failed step."""

    code = "CERTIFICATE_REFUSED"
    http_status = 409

    def __init__(self, message: str, *, step: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.step = step


class CertificateInvalid(FormatError):
    """A PDF that is no certificate of this project (unreadable, or not one embedded bundle per page)."""

    code = "CERTIFICATE_INVALID"


class CertificateFontMissing(ProvenanceError):
    """No CJK font to print the certificate's Chinese text (install fonts-wqy-zenhei, or pass --font)."""

    code = "CERTIFICATE_FONT_MISSING"
    http_status = 500


class SignerRoleForbidden(SignerInvalid):
    """The organisation's pinned role may not record that kind (the gateway would have refused it)."""

    code = "ROLE_FORBIDDEN"


class KeysNotPinned(VerificationError):
    """Every step held, but against keys the bundle carries itself: *consistent*, not *verified*.

    ``Verifier.verify`` raises it (``step``: the first unpinned step, ``signer`` or ``checkpoint``);
    ``Verifier.verify_consistent`` is the explicit opt-in that accepts such a bundle.
    """

    code = "KEYS_NOT_PINNED"

    def __init__(self, message: str, *, step: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.step = step


class VerifierFault(VerificationError):
    """A check could not run on this input (a bug): the step fails, the verifier does not crash."""

    code = "VERIFIER_FAULT"

    def __init__(self, message: str, *, step: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.step = step


# --- ledger / workflow (filled by the chain and gateway layers) -------------------------------------


class NotPermitted(ProvenanceError):
    code = "NOT_PERMITTED"
    http_status = 403


class NotFound(ProvenanceError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(ProvenanceError):
    """Conflicts with the recorded state (a domain's workflow state, a replay...)."""

    code = "CONFLICT"
    http_status = 409


class OrgMismatch(NotPermitted):
    """The token's organisation is not the record's (or the one a payload names as its submitter)."""

    code = "ORG_MISMATCH"


class RoleForbidden(NotPermitted):
    code = "ROLE_FORBIDDEN"


class AccessCodeRequired(NotPermitted):
    """The reader may read (or submit to) this subject only with the access code on its slip, and sent none
    (also answered for a subject that does not exist: existence is not told to such readers)."""

    code = "ACCESS_CODE_REQUIRED"


class AccessCodeInvalid(NotPermitted):
    """The access code presented does not open this subject (or there is no such subject)."""

    code = "ACCESS_CODE_INVALID"


class LedgerError(ProvenanceError):
    code = "LEDGER_ERROR"
    http_status = 502
