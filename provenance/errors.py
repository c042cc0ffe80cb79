"""One error root for the whole project, with stable machine-readable codes.

The gateway maps these to HTTP in one handler, the node to JSON-RPC in one table, the CLI to one line
and a non-zero exit. A code never changes once published: outside tools match on it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ProvenanceError(Exception):
    """Root of every error this project raises on purpose.

    A subclass states its code (and HTTP status, when not 400) as class keywords:
    ``class Replayed(ProvenanceError, code="REPLAYED", http_status=409)``.
    """

    code: ClassVar[str] = "PROVENANCE_ERROR"
    http_status: ClassVar[int] = 400

    def __init_subclass__(cls, *, code: str | None = None, http_status: int | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if code is not None:
            cls.code = code
        if http_status is not None:
            cls.http_status = http_status

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


# --- crypto -------------------------------------------------------------------------------------------


class CryptoError(ProvenanceError, code="CRYPTO_ERROR"):
    pass


class KeyInvalid(CryptoError, code="KEY_INVALID"):
    """A key that cannot be parsed, is of the wrong curve, or is not on the curve."""


class SignatureInvalid(CryptoError, code="SIGNATURE_INVALID"):
    """A signature that is malformed or does not verify."""


class BackendUnavailable(CryptoError, code="CRYPTO_BACKEND_UNAVAILABLE", http_status=500):
    pass


# --- input formats -----------------------------------------------------------------------------------


class FormatError(ProvenanceError, code="FORMAT_INVALID"):
    """Input that is not of the expected format (JSON, PEM, base64, note text, ...)."""


class DuplicateKey(FormatError, code="JSON_DUPLICATE_KEY"):
    """A JSON object names a key twice: parsers disagree on which copy counts, so the input is refused."""


class SchemaInvalid(FormatError, code="SCHEMA_INVALID"):
    pass


class RecordInvalid(FormatError, code="RECORD_INVALID"):
    pass


class PayloadInvalid(FormatError, code="PAYLOAD_INVALID"):
    pass


class TraceCodeInvalid(PayloadInvalid, code="TRACE_CODE_INVALID"):
    """A drug traceability code of no known form, a GS1 code with a wrong check digit, a code listed twice
    in one dispense, or a count of codes other than the boxes dispensed."""


class TraceCodeAmbiguous(TraceCodeInvalid, code="TRACE_CODE_AMBIGUOUS"):
    """A GS1 element string scanned without its FNC1 (GS) separators that reads as more than one box."""


class AccessCodeDigestMissing(PayloadInvalid, code="ACCESS_CODE_DIGEST_MISSING"):
    """An ``rx.issue`` without its access code's digest: no pharmacy could read or dispense it (the
    hospital's SDK makes the code, ``Client.issue_prescription``)."""


class AccessCodeMalformed(FormatError, code="ACCESS_CODE_MALFORMED"):
    """Text that is not an access code (20 Crockford base32 characters, dashes and spaces ignored)."""


# --- HTTP requests (every server of the project: gateway, witness) -----------------------------------


class BodyTooLarge(ProvenanceError, code="BODY_TOO_LARGE", http_status=413):
    """The request body is larger than the server takes: refused unread."""


class BodyTimeout(ProvenanceError, code="BODY_TIMEOUT", http_status=408):
    """The request body did not arrive within the body time-out (a slow or stalled client)."""


# --- verification ------------------------------------------------------------------------------------


class VerificationError(ProvenanceError, code="VERIFICATION_FAILED"):
    """A verification step failed; ``step`` names it (see ``provenance.verification.verify.STEPS``): the
    class keyword ``step=`` where one step raises it, else the raiser's (see ``StepAtRaise``)."""

    step: str = "unknown"

    def __init_subclass__(cls, *, step: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if step is not None:
            cls.step = step

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["step"] = self.step
        return d


class StepAtRaise(VerificationError):
    """A verification error raised by more than one step: the raiser names it (``step=``)."""

    def __init__(self, message: str, *, step: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.step = step


class DigestMismatch(VerificationError, code="DIGEST_MISMATCH", step="digest"):
    pass


class PayloadDigestMismatch(VerificationError, code="PAYLOAD_DIGEST_MISMATCH", step="payload"):
    pass


class ItemProofInvalid(VerificationError, code="ITEM_PROOF_INVALID", step="item"):
    """A batch item (a reading of an ``env.batch``) is not a leaf of the Merkle root its signed batch names:
    the item altered, its proof wrong, or the batch payload missing or another batch's."""


class RecordSignatureInvalid(VerificationError, code="SIGNATURE_INVALID", step="signature"):
    pass


class ProofInvalid(VerificationError, code="PROOF_INVALID", step="inclusion"):
    pass


class ConsistencyInvalid(VerificationError, code="CONSISTENCY_INVALID", step="consistency"):
    pass


class CheckpointInvalid(VerificationError, code="CHECKPOINT_INVALID", step="checkpoint"):
    pass


class WitnessQuorumMissing(VerificationError, code="WITNESS_QUORUM_MISSING", step="checkpoint"):
    """A checkpoint without the cosignatures the trust file's witness policy asks for (k of n witnesses).

    ``details``: ``cosigned_by`` (the trusted witnesses whose cosignatures verified), ``quorum`` and
    ``witnesses`` (every trusted witness).
    """


class AnchorInvalid(VerificationError, code="ANCHOR_INVALID", step="anchor"):
    pass


class BatchAnchorInvalid(VerificationError, code="BATCH_ANCHOR_INVALID", step="batch_anchor"):
    """A batch item's ``batch_anchor`` does not hold: it names another root than the signed batch, another
    chain than the pinned one, or (looked up on chain) no such anchor event in its transaction."""


class HistoryInconsistent(AnchorInvalid, code="HISTORY_INCONSISTENT"):
    """The anchored checkpoint is not on one history with the anchors around it (a forked log)."""


class ConsistencyProofMalformed(AnchorInvalid, code="CONSISTENCY_PROOF_MALFORMED"):
    """The proof source (the gateway) served a consistency proof of the wrong shape (length, hash size):
    its fault, which says nothing about the log's history."""


class ReceiptInvalid(VerificationError, code="RECEIPT_INVALID", step="receipt"):
    """An acceptance receipt that does not parse, is not signed by a pinned log key, or is for another record.

    ``details["check"]`` says which: ``format``, ``inclusion`` (a batch receipt's proof), ``log_key``,
    ``signature``, ``origin`` or ``record``.
    """


class SignerInvalid(VerificationError, code="SIGNER_UNTRUSTED", step="signer"):
    """The signer named in a bundle is not the one trusted for that organisation."""


class ListingMismatch(VerificationError, code="LISTING_MISMATCH", step="listing"):
    """A bundle fetched for a listed record is another record, or says otherwise than the listing."""


class ListingInvalid(VerificationError, code="LISTING_INVALID", step="listing"):
    """A history listing that cannot be one finite listing (a cursor that does not advance, an empty page
    that says more follow): the reading stops here rather than loop or show repeats."""


class CertificateMismatch(VerificationError, code="CERTIFICATE_MISMATCH", step="certificate"):
    """A certificate's printed values are not those of the evidence bundle embedded in it."""


class CertificateRefused(StepAtRaise, code="CERTIFICATE_REFUSED", http_status=409):
    """No certificate for a record that does not verify at issue time; ``step`` names the failed step."""


class CertificateInvalid(FormatError, code="CERTIFICATE_INVALID"):
    """A PDF that is no certificate of this project (unreadable, or not one embedded bundle per page)."""


class CertificateFontMissing(ProvenanceError, code="CERTIFICATE_FONT_MISSING", http_status=500):
    """No CJK font to print the certificate's Chinese text (install fonts-wqy-zenhei, or pass --font)."""


class SignerRoleForbidden(SignerInvalid, code="ROLE_FORBIDDEN"):
    """The organisation's pinned role may not record that kind (the gateway would have refused it)."""


class KeysNotPinned(StepAtRaise, code="KEYS_NOT_PINNED"):
    """Every step held, but against keys the bundle carries itself: *consistent*, not *verified*.

    ``Verifier.verify`` raises it (``step``: the first unpinned step, ``signer`` or ``checkpoint``);
    ``Verifier.verify_consistent`` is the explicit opt-in that accepts such a bundle.
    """


class VerifierFault(StepAtRaise, code="VERIFIER_FAULT"):
    """A check could not run on this input (a bug): the step fails, the verifier does not crash."""


# --- ledger / workflow (filled by the chain and gateway layers) -------------------------------------


class NotPermitted(ProvenanceError, code="NOT_PERMITTED", http_status=403):
    pass


class NotFound(ProvenanceError, code="NOT_FOUND", http_status=404):
    pass


class Conflict(ProvenanceError, code="CONFLICT", http_status=409):
    """Conflicts with the recorded state (a domain's workflow state, a replay...)."""


class OrgMismatch(NotPermitted, code="ORG_MISMATCH"):
    """The token's organisation is not the record's (or the one a payload names as its submitter)."""


class RoleForbidden(NotPermitted, code="ROLE_FORBIDDEN"):
    pass


class AccessCodeRequired(NotPermitted, code="ACCESS_CODE_REQUIRED"):
    """The reader may read (or submit to) this subject only with the access code on its slip, and sent none
    (also answered for a subject that does not exist: existence is not told to such readers)."""


class AccessCodeInvalid(NotPermitted, code="ACCESS_CODE_INVALID"):
    """The access code presented does not open this subject (or there is no such subject)."""


class LedgerError(ProvenanceError, code="LEDGER_ERROR", http_status=502):
    pass
