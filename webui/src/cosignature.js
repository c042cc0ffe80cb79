// Witness cosignatures and the trust file's k-of-n policy: a port of provenance/log/cosignature.py (checking
// only). Format: docs/formats.md "Witness cosignatures"; choices: docs/design/witness.md.
import { concat, equalBytes, utf8 } from './bytes.js';
import { CheckpointError, openNote } from './note.js';
import { sha256, sm2Verify } from './sm.js';

export const COSIGNATURE_TYPE = concat(Uint8Array.of(0xff), utf8('shancheng-provenance/cosignature-sm2-sm3/v1'));
const TIMESTAMP_SIZE = 8;
const MAX_TIMESTAMP = (1n << 63n) - 1n;

/** A checkpoint without the policy's quorum; `cosignedBy` names the trusted witnesses that did cosign. */
export class QuorumError extends Error {
  constructor(message, cosignedBy, quorum) {
    super(message);
    this.cosignedBy = cosignedBy;
    this.quorum = quorum;
  }
}

/** The 4-byte key ID of a witness: SHA-256(name ‖ 0x0A ‖ cosignature type ‖ SPKI DER)[:4]. */
export const witnessKeyId = (name, publicKey) =>
  sha256(concat(utf8(name), Uint8Array.of(0x0a), COSIGNATURE_TYPE, publicKey.spki)).subarray(0, 4);

const label = (w) => (w.org ? `${w.name} (${w.org})` : w.name);

/**
 * The names of the policy's witnesses whose cosignatures on `note` verify, once they reach the quorum.
 * Lines by other keys are ignored; a line claiming a trusted witness's key that does not verify throws
 * CheckpointError; fewer than `policy.quorum` witnesses throws QuorumError.
 */
export function checkQuorum(note, policy) {
  const { body, signatures } = openNote(note);
  const text = utf8(body);
  const by = [];
  for (const w of policy.keys) {
    const kid = witnessKeyId(w.name, w.key);
    const mine = signatures.filter((s) => s.name === w.name && equalBytes(s.keyId, kid));
    for (const s of mine) {
      if (s.signature.length <= TIMESTAMP_SIZE) {
        throw new CheckpointError(`cosignature by witness ${label(w)} is too short for a timestamp`);
      }
      const timestamp = s.signature.subarray(0, TIMESTAMP_SIZE).reduce((n, b) => (n << 8n) | BigInt(b), 0n);
      const bad =
        timestamp > MAX_TIMESTAMP
          ? `cosignature timestamp ${timestamp} is not an integer in [0, 2**63)`
          : sm2Verify(concat(utf8(`cosignature/v1\ntime ${timestamp}\n`), text), s.signature.subarray(TIMESTAMP_SIZE), w.key);
      if (bad) throw new CheckpointError(`cosignature by witness ${label(w)} does not verify: ${bad}`);
    }
    if (mine.length) by.push(w);
  }
  if (by.length < policy.quorum) {
    const who = by.length ? by.map(label).join(', ') : 'none';
    throw new QuorumError(
      `checkpoint has ${by.length} of the ${policy.quorum} witness cosignatures the trust policy requires (cosigned by: ${who})`,
      by.map((w) => w.name),
      policy.quorum,
    );
  }
  return by.map((w) => w.name);
}
