"""The one verifier of evidence bundles, used by the CLI, the SDK and the gateway.

``Verifier.verify`` returns ``None`` only when the bundle is *verified*, and otherwise raises a
:class:`~provenance.errors.VerificationError` whose ``step`` names the first step that failed
(sigstore-python's ``Verifier.verify_artifact`` contract). Steps run in a fixed order; each later step
relies on the earlier ones having held.

Holding is not the same as *verified*. Without pinned organisation and log keys a bundle can only be
*consistent* (it agrees with the keys it carries itself, which anyone can make): ``verify`` refuses it
(:class:`~provenance.errors.KeysNotPinned`), and a caller that wants to accept it says so by calling
``verify_consistent``, which returns the verdict (as sigstore-python's ``UnsafeNoOp`` policy is asked for
by name). An anchor that was not looked up on chain is *skipped* (not checked), never passed; one looked up
on an RPC endpoint whose blocks were not checked against pinned sealing keys is a *warning*. The /verify
page (``webui/src/verify.js``) is a port of this module, step for step.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from provenance.crypto import SM2PublicKey
from provenance.errors import (
    AnchorInvalid,
    CheckpointInvalid,
    DigestMismatch,
    FormatError,
    ItemProofInvalid,
    KeyInvalid,
    KeysNotPinned,
    ListingMismatch,
    PayloadDigestMismatch,
    ProofInvalid,
    RecordSignatureInvalid,
    SignatureInvalid,
    SignerInvalid,
    SignerRoleForbidden,
    VerificationError,
    VerifierFault,
)
from provenance.log.bundle import Anchor, BatchAnchor, EvidenceBundle
from provenance.log.checkpoint import Checkpoint, NoteVerifier, verify_checkpoint
from provenance.log.cosignature import require_quorum
from provenance.log.merkle import SM3_HASHER, TreeHasher, leaf_hash, verify_inclusion
from provenance.records import canonical_bytes, digest_of
from provenance.timestamps import parse_timestamp
from provenance.verification.batch_anchor import check_batch_anchor
from provenance.verification.trust import TrustStore

STEPS = ("digest", "payload", "signer", "signature", "checkpoint", "inclusion", "anchor")
# A bundle for one item of a batch record (a reading of an ``env.batch``) has one more step, after
# ``payload``: the item's proof leads to the Merkle root of the signed batch payload; and one last: the
# batch's root is anchored in its domain contract (``batch_anchor``, EnvMonitoring.anchorBatch).
ITEM_STEPS = (
    "digest",
    "payload",
    "item",
    "signer",
    "signature",
    "checkpoint",
    "inclusion",
    "anchor",
    "batch_anchor",
)

STEP_TITLES = {
    "schema": "bundle parses and matches the schema",
    "listing": "bundle is the record the gateway listed (id, kind, organisation, subject, time)",
    "digest": "record digest (SM3 of the canonical envelope)",
    "payload": "payload digest",
    "item": "batch item: its Merkle inclusion proof leads to the root the signed batch names",
    "signer": "signer key belongs to the organisation at the record's time, whose role may record the kind",
    "signature": "SM2 signature of the organisation",
    "checkpoint": "checkpoint signed by the log key",
    "inclusion": "Merkle inclusion proof up to the checkpoint root",
    "anchor": "checkpoint anchored on chain",
    "batch_anchor": "the signed batch's Merkle root anchored in its domain contract on chain",
    "certificate": "the certificate prints what its embedded evidence says, and nothing else",
}


_HEX64 = re.compile(r"[0-9a-f]{64}")

# What a history listing says about each record that its bundle must say too (``check_listed``).
LISTED_FIELDS = ("kind", "org", "subject", "timestamp")


def check_listed(
    bundle: EvidenceBundle,
    item: Mapping[str, Any],
    subject: str | None = None,
    *,
    duplicate: bool = False,
) -> None:
    """Raise :class:`ListingMismatch` unless ``bundle`` is the record a listing ``item`` names.

    A history view shows what the listing says (kind, organisation, time) beside the verdict of a bundle
    fetched by id; a gateway that answers with another record's bundle must not lend it its verdict, nor
    show one record twice (``duplicate``: the listing named this id before) as two verified rows.
    """
    env = bundle.signed.envelope
    listed_id = item.get("id")
    if duplicate:
        raise ListingMismatch(
            f"the listing names record {str(listed_id)[:80]} more than once",
            details={"listed": listed_id, "duplicate": True},
        )
    if listed_id != bundle.digest:
        raise ListingMismatch(
            f"the listing names record {str(listed_id)[:80]}, the bundle is record {bundle.digest}",
            details={"listed": listed_id, "bundle": bundle.digest},
        )
    expected = dict(item) | ({"subject": subject} if subject is not None else {})
    for name in LISTED_FIELDS:
        signed = getattr(env, name)
        if name in expected and expected[name] != signed:
            raise ListingMismatch(
                f"the listing says {name} {str(expected[name])[:80]!r}, the signed record {signed!r}",
                details={"field": name},
            )


class AnchorChecker(Protocol):
    """Looks an anchor up on the ledger; raises :class:`AnchorInvalid` when it does not hold there.

    Returns ``None`` when the ledger's answers were proven (blocks sealed by pinned keys), else a warning
    saying what was taken on the endpoint's word (the step is then a ``warning``, never ``passed``).
    """

    def check(self, anchor: Anchor, checkpoint: Checkpoint) -> str | None: ...

    def check_batch(
        self, anchor: BatchAnchor, kind: str, subject: str, batch: Mapping[str, Any]
    ) -> str | None:
        """Look up a batch root's anchor (``batch``: the signed batch payload of a ``kind`` record of
        ``subject``); raise :class:`BatchAnchorInvalid` when it does not hold; a warning as for
        :meth:`check`."""
        ...


@dataclass(frozen=True, slots=True)
class StepResult:
    step: str
    status: str  # "passed" | "failed" | "skipped" (not checked) | "warning" (held against unpinned keys)
    detail: str = ""


Verdict = Literal["verified", "consistent", "failed"]


def verdict(report: list[StepResult]) -> Verdict:
    """The verdict of a verification report (``Verifier.verify``'s, or a schema failure's).

    ``verified``: every step held and both the organisation's key and the log key were pinned (a trust
    file); ``consistent``: every step held, but against keys the bundle carries itself (integrity, not
    attribution); ``failed``: a step failed.
    """
    status = {r.step: r.status for r in report}
    if not report or "failed" in status.values():
        return "failed"
    return "verified" if status.get("signer") == status.get("checkpoint") == "passed" else "consistent"


@dataclass(slots=True)
class _Run:
    """State of one verification, so that one Verifier can serve many threads."""

    out: list[StepResult]
    cp: Checkpoint | None = None
    payload_digest: str | None = None  # the caller's, when it computed it (an export's fast path)


class Verifier:
    """Verifies evidence bundles against pinned trust (or, unpinned, the keys the bundle carries)."""

    def __init__(
        self,
        *,
        trust: TrustStore | None = None,
        anchor_checker: AnchorChecker | None = None,
        require_anchor: bool = True,
        tree_hasher: TreeHasher = SM3_HASHER,
    ) -> None:
        self._trust = trust
        self._tree_hasher = tree_hasher  # export verification passes a MemoTreeHasher
        self._anchor_checker = anchor_checker
        self._require_anchor = require_anchor
        # Parsed once per PEM text (bounded): exports repeat the same few organisation and log keys.
        self._key_cache: dict[str, SM2PublicKey] = {}
        self._note_verifiers: dict[tuple[str, SM2PublicKey], NoteVerifier] = {}
        # Many bundles share one checkpoint: remember notes already verified (bounded), keyed by the exact
        # note text (body and every signature line), the log key (name and point) and the pinned origin.
        self._note_cache: dict[tuple[str, NoteVerifier, str | None], Checkpoint] = {}

    @classmethod
    def offline(cls, trust: TrustStore, *, require_anchor: bool = True) -> Verifier:
        """Every check but the live anchor lookup, with pinned organisation and log keys."""
        return cls(trust=trust, require_anchor=require_anchor)

    def verify(self, bundle: EvidenceBundle, *, report: list[StepResult] | None = None) -> None:
        """Return ``None`` only when the bundle is *verified*: every step held, the organisation's key and
        the log key pinned. Raise naming the first failed step otherwise, and :class:`KeysNotPinned` when
        every step held against keys the bundle carries itself (use :meth:`verify_consistent` to accept
        that explicitly)."""
        out = report if report is not None else []
        if self.verify_consistent(bundle, report=out) == "verified":
            return
        unpinned = next(r for r in out if r.status == "warning" and r.step in ("signer", "checkpoint"))
        raise KeysNotPinned(
            f"every step held, but {unpinned.detail}: the bundle is only consistent, not verified "
            "(pin the keys with a trust file, or call verify_consistent to accept that)",
            step=unpinned.step,
        )

    def verify_consistent(
        self,
        bundle: EvidenceBundle,
        *,
        report: list[StepResult] | None = None,
        payload_digest: str | None = None,
    ) -> Literal["verified", "consistent"]:
        """The explicit opt-in for unpinned keys: return the verdict, ``"verified"`` or ``"consistent"``
        (every step held, some against keys the bundle carries itself: integrity, not attribution); raise
        naming the first failed step otherwise. ``payload_digest``: the SM3 hex of the bundle's payload's
        canonical bytes (``digest_of``), when the caller has computed it; the payload step compares it."""
        run = _Run(out=report if report is not None else [], payload_digest=payload_digest)
        out = run.out
        for name, step in self._STEPS:
            if name in ("item", "batch_anchor") and bundle.item is None:
                continue  # a record's own bundle: no item steps
            before = len(out)
            try:
                try:
                    step(self, bundle, run)
                except VerificationError:
                    raise
                except Exception as bug:  # a verifier never crashes: the step fails, naming itself
                    raise VerifierFault(
                        f"the {name} check could not run on this input: {type(bug).__name__}: {bug}",
                        step=name,
                    ) from bug
            except VerificationError as exc:
                out.append(StepResult(name, "failed", exc.message))
                exc.details.setdefault("passed", [r.step for r in out if r.status == "passed"])
                raise
            if len(out) == before:
                out.append(_PASSED[name])
        return "verified" if verdict(out) == "verified" else "consistent"  # every step held

    # --- steps -----------------------------------------------------------------------------------------

    def _digest(self, b: EvidenceBundle, run: _Run) -> None:
        actual = b.signed.envelope.digest
        if actual != b.digest:
            raise DigestMismatch(
                "record digest does not match the envelope",
                details={"expected": b.digest, "actual": actual},
            )

    def _payload(self, b: EvidenceBundle, run: _Run) -> None:
        if not b.has_payload:
            run.out.append(StepResult("payload", "skipped", "payload not included (withheld or purged)"))
            return
        try:
            actual = run.payload_digest or digest_of(b.payload)
        except FormatError as exc:
            raise PayloadDigestMismatch(f"payload cannot be canonicalised: {exc.message}") from exc
        if actual != b.signed.envelope.payload_digest:
            raise PayloadDigestMismatch(
                "payload does not match the payload digest the organisation signed",
                details={"expected": b.signed.envelope.payload_digest, "actual": actual},
            )

    def _item(self, b: EvidenceBundle, run: _Run) -> None:
        item = b.item
        assert item is not None
        batch = b.payload if b.has_payload else None
        if not isinstance(batch, dict):
            raise ItemProofInvalid(
                "the batch payload is not in the bundle: an item verifies only against the root it names"
            )
        root, count = batch.get("root"), batch.get("count")
        if not isinstance(root, str) or not _HEX64.fullmatch(root):
            raise ItemProofInvalid("the batch payload names no Merkle root (64 lowercase hex)")
        if type(count) is not int or count != item.count:
            raise ItemProofInvalid(
                f"the item claims {item.count} items in its batch, the signed batch {count!r}",
                details={"item_count": item.count, "batch_count": count},
            )
        try:
            leaf = canonical_bytes(item.document)
        except FormatError as exc:
            raise ItemProofInvalid(f"the item cannot be canonicalised: {exc.message}") from exc
        try:
            verify_inclusion(
                leaf_hash(leaf), item.index, item.count, list(item.inclusion_proof), bytes.fromhex(root)
            )
        except ProofInvalid as exc:
            raise ItemProofInvalid(
                f"item {item.index}: {exc.message} (the item or its proof was altered)",
                details={"index": item.index, **exc.details},
            ) from exc

    def _public_key(self, pem: str) -> SM2PublicKey:
        """The key of a PEM text, parsed once; raises KeyInvalid (never cached)."""
        key = self._key_cache.get(pem)
        if key is None:
            key = SM2PublicKey.from_pem(pem)
            if len(self._key_cache) >= 4096:
                self._key_cache.clear()
            self._key_cache[pem] = key
        return key

    def _signer_key(self, b: EvidenceBundle) -> SM2PublicKey:
        try:
            return self._public_key(b.signer_public_key)
        except KeyInvalid as exc:
            raise SignerInvalid(f"signer public key is not a valid SM2 key: {exc.message}") from exc

    def _signer(self, b: EvidenceBundle, run: _Run) -> None:
        env = b.signed.envelope
        if b.signer_org != env.org:
            raise SignerInvalid(
                f"bundle names signer '{b.signer_org}' but the record is by '{env.org}'",
                details={"signer": b.signer_org, "org": env.org},
            )
        key = self._signer_key(b)
        if self._trust is None:
            run.out.append(
                StepResult(
                    "signer", "warning", "signer key taken from the bundle: not attributed (no trust file)"
                )
            )
            return
        entry = self._trust.orgs.get(env.org)
        if entry is None:
            raise SignerInvalid(
                f"organisation '{env.org}' is not in the trust store", details={"org": env.org}
            )
        if key not in self._trust.org_keys_at(env.org, parse_timestamp(env.timestamp)):  # same point
            raise SignerInvalid(
                f"the signer key is not a key of '{env.org}' valid at {env.timestamp} "
                "(unknown, not yet valid, expired or revoked)",
                details={"org": env.org, "timestamp": env.timestamp},
            )
        if not self._trust.may_record(entry.role, env.kind):
            raise SignerRoleForbidden(
                f"'{env.org}' is a {entry.role}, which may not record {env.kind}",
                details={"org": env.org, "role": entry.role, "kind": env.kind},
            )

    def _signature(self, b: EvidenceBundle, run: _Run) -> None:
        try:
            self._signer_key(b).verify(b.signed.envelope.canonical(), b.signed.signature)
        except SignatureInvalid as exc:
            raise RecordSignatureInvalid(f"SM2 signature does not verify: {exc.message}") from exc

    def _log_verifiers(self, b: EvidenceBundle) -> tuple[list[tuple[NoteVerifier, str | None]], bool]:
        """The log keys (with the origin each pins) the checkpoint may be signed by, and whether pinned."""
        if self._trust is not None and self._trust.logs:
            pinned = [k for k in self._trust.logs if b.log_key is None or k.name == b.log_key[0]]
            if not pinned:
                assert b.log_key is not None
                raise CheckpointInvalid(f"log key '{b.log_key[0]}' is not pinned in the trust store")
            # A rotated log key: a key whose OrgRegistry window ended by the record's time cannot have signed
            # a checkpoint holding it (signed after it), so a retired key alone no longer vouches for it.
            at = b.signed.envelope.timestamp
            pinned = [k for k in pinned if k.signs_after(parse_timestamp(at))]
            if not pinned:
                raise CheckpointInvalid(
                    f"every pinned log key ended (expired or revoked) by {at}, the record's time",
                    details={"check": "log_key", "timestamp": at},
                )
            return [(self._note_verifier(k.name, k.public_key), k.origin) for k in pinned], True
        if b.log_key is None:
            raise CheckpointInvalid("no log key: pass a trust file or a bundle that names its log key")
        try:
            key = self._public_key(b.log_key[1])
        except KeyInvalid as exc:
            raise CheckpointInvalid(f"log key in the bundle is not a valid SM2 key: {exc.message}") from exc
        return [(self._note_verifier(b.log_key[0], key), None)], False

    def _note_verifier(self, name: str, key: SM2PublicKey) -> NoteVerifier:
        # One per log key, so that its key ID (a SHA-256 over the name and the DER key) is computed once.
        verifier = self._note_verifiers.get((name, key))
        if verifier is None:
            verifier = NoteVerifier(name=name, public_key=key)  # raises CheckpointInvalid on a bad name
            if len(self._note_verifiers) >= 4096:
                self._note_verifiers.clear()
            self._note_verifiers[(name, key)] = verifier
        return verifier

    def _verified_note(self, note: str, verifier: NoteVerifier, origin: str | None) -> Checkpoint:
        cache_key = (note, verifier, origin)
        cp = self._note_cache.get(cache_key)
        if cp is None:
            cp = verify_checkpoint(note, verifier, origin=origin)
            require_quorum(self._trust, note)  # cached with the note: its lines are in the key
            if len(self._note_cache) >= 4096:
                self._note_cache.clear()
            self._note_cache[cache_key] = cp
        return cp

    def _checkpoint(self, b: EvidenceBundle, run: _Run) -> None:
        candidates, pinned = self._log_verifiers(b)
        errors: list[CheckpointInvalid] = []
        for verifier, origin in candidates:  # several keys under one name: a rotated log key
            try:
                cp = self._verified_note(b.checkpoint, verifier, origin)
                break
            except CheckpointInvalid as exc:
                errors.append(exc)
        else:
            raise errors[0]
        if cp.size != b.tree_size:
            raise CheckpointInvalid(
                f"checkpoint is for tree size {cp.size}, the proof for {b.tree_size}",
                details={"checkpoint_size": cp.size, "proof_size": b.tree_size},
            )
        run.cp = cp
        if not pinned:
            why = "no trust file" if self._trust is None else "the trust file pins no log key"
            run.out.append(StepResult("checkpoint", "warning", f"log key taken from the bundle ({why})"))

    def _inclusion(self, b: EvidenceBundle, run: _Run) -> None:
        assert run.cp is not None
        verify_inclusion(
            leaf_hash(b.signed.leaf_entry()),
            b.leaf_index,
            b.tree_size,
            b.inclusion_proof,
            run.cp.root,
            hasher=self._tree_hasher,
        )

    def _anchor(self, b: EvidenceBundle, run: _Run) -> None:
        assert run.cp is not None
        a = b.anchor
        if a is None:
            if self._require_anchor:
                raise AnchorInvalid("the bundle has no on-chain anchor (not anchored yet?)")
            run.out.append(StepResult("anchor", "skipped", "no anchor in the bundle"))
            return
        if a.tree_size != run.cp.size or a.root != run.cp.root:
            raise AnchorInvalid(
                "the anchor is for a different (size, root) than the checkpoint",
                details={"anchor_size": a.tree_size, "checkpoint_size": run.cp.size},
            )
        pinned_chain = self._trust.chain_id if self._trust else None
        pinned_log = self._trust.provenance_log if self._trust else None
        if pinned_chain is not None and a.chain_id != pinned_chain:
            raise AnchorInvalid(
                f"the anchor is on chain {a.chain_id}, the trust file pins chain {pinned_chain}",
                details={"chain_id": a.chain_id, "pinned": pinned_chain},
            )
        if pinned_log is not None and a.contract.lower() != pinned_log.lower():
            raise AnchorInvalid(
                f"the anchor names contract {a.contract}, the trust file pins ProvenanceLog {pinned_log}",
                details={"contract": a.contract, "pinned": pinned_log},
            )
        if self._anchor_checker is None:
            pins = "names the pinned chain and contract; " if pinned_chain and pinned_log else ""
            run.out.append(
                StepResult("anchor", "skipped", f"{pins}not looked up on chain {a.chain_id} (offline)")
            )
            return
        warning = self._anchor_checker.check(a, run.cp)
        if warning:
            run.out.append(StepResult("anchor", "warning", warning))

    def _batch_anchor(self, b: EvidenceBundle, run: _Run) -> None:
        pinned_chain = self._trust.chain_id if self._trust else None
        outcome = check_batch_anchor(b, pinned_chain, self._anchor_checker)
        if outcome is not None:
            run.out.append(StepResult("batch_anchor", *outcome))

    _STEPS: tuple[tuple[str, Callable[[Verifier, EvidenceBundle, _Run], None]], ...] = (
        ("digest", _digest),
        ("payload", _payload),
        ("item", _item),
        ("signer", _signer),
        ("signature", _signature),
        ("checkpoint", _checkpoint),
        ("inclusion", _inclusion),
        ("anchor", _anchor),
        ("batch_anchor", _batch_anchor),
    )


# One immutable "passed" result a step, shared by every report (a verification appends several).
_PASSED = {name: StepResult(name, "passed") for name, _ in Verifier._STEPS}
