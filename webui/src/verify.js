// The verification steps of an evidence bundle, in the order and with the names of provenance/verify.py
// (Verifier.verify) offline, which is what `provenance verify [--trust FILE] BUNDLE` does.
// Each step yields passed / failed / skipped with a reason key (translated by the page) and, on failure,
// the technical message in English (the same wording as the Python verifier where it can be).
import { b64decode, fromHex, equalBytes, toHex } from './bytes.js';
import { canonicalBytes, parseJson } from './jcs.js';
import { leafHash, verifyInclusion, ProofError } from './merkle.js';
import { checkQuorum, QuorumError } from './cosignature.js';
import { verifyCheckpoint, CheckpointError } from './note.js';
import { schemaError } from './schema.js';
import { KeyError, parsePublicKey, sm2Verify, sm3 } from './sm.js';
import { instantMicros, orgKeysAt } from './trust.js';

export const STEPS = ['digest', 'payload', 'signer', 'signature', 'checkpoint', 'inclusion', 'anchor'];

class StepFailure extends Error {
  constructor(reason, detail = '', params = {}) {
    super(detail || reason);
    this.reason = reason;
    this.params = params;
  }
}

const fail = (reason, detail, params) => {
  throw new StepFailure(reason, detail, params);
};

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** provenance/records.py parse_timestamp: the pattern (schema) and a real calendar instant. */
function realTimestamp(ts) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(ts);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = mo === 2 && !leap ? 28 : DAYS[mo - 1];
  return y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= days && h < 24 && mi < 60 && s < 60;
}

/** Parse and check the shape of a bundle (the Python side's EvidenceBundle.from_dict). */
function readBundle(data) {
  const err = schemaError(data);
  if (err) fail('schema.invalid', `evidence bundle does not match the schema at ${err.path}: ${err.message}`, err);
  if (!realTimestamp(data.record.timestamp)) {
    fail('schema.invalid', `timestamp is not a valid date-time: ${data.record.timestamp}`, { path: 'record/timestamp' });
  }
  const signature = b64decode(data.signature);
  if (!signature) fail('schema.invalid', 'signature is not valid base64', { path: 'signature' });
  const proof = data.log.inclusion_proof.map((p) => b64decode(p));
  if (proof.some((p) => p === null)) fail('schema.invalid', 'inclusion proof hash is not valid base64', { path: 'log/inclusion_proof' });
  return { data, signature, proof };
}

/** The trust file's witness policy applied to the checkpoint (provenance/cosignature.py require_quorum). */
function witnessQuorum(b) {
  const policy = b.trust?.witnesses;
  if (!policy) return null;
  try {
    const by = checkQuorum(b.data.log.checkpoint, policy);
    return { cosigned_by: by.join(', '), quorum: policy.quorum };
  } catch (e) {
    if (e instanceof QuorumError) {
      fail('checkpoint.witness_quorum', e.message, {
        cosigned_by: e.cosignedBy.length ? e.cosignedBy.join(', ') : '—',
        count: e.cosignedBy.length,
        quorum: e.quorum,
      });
    }
    if (e instanceof CheckpointError) fail('checkpoint.bad_cosignature', e.message);
    throw e;
  }
}

const STEP_FUNCS = {
  digest(b) {
    const actual = toHex(sm3(canonicalBytes(b.data.record)));
    if (actual !== b.data.digest) {
      fail('digest.mismatch', 'record digest does not match the envelope', { expected: b.data.digest, actual });
    }
  },

  payload(b) {
    if (!('payload' in b.data) || b.data.payload === null) return { status: 'skipped', reason: 'payload.absent' };
    let bytes;
    try {
      bytes = canonicalBytes(b.data.payload);
    } catch (e) {
      fail('payload.uncanonical', `payload cannot be canonicalised: ${e.message}`);
    }
    const actual = toHex(sm3(bytes));
    const expected = b.data.record.payload_digest;
    if (actual !== expected) {
      fail('payload.mismatch', 'payload does not match the payload digest the organisation signed', { expected, actual });
    }
  },

  signer(b) {
    const { org } = b.data.record;
    const signer = b.data.signer.org;
    if (signer !== org) fail('signer.org_mismatch', `bundle names signer '${signer}' but the record is by '${org}'`, { signer, org });
    try {
      b.signerKey = parsePublicKey(b.data.signer.public_key);
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      fail('signer.bad_key', `signer public key is not a valid SM2 key: ${e.message}`);
    }
    const trust = b.trust;
    if (!trust) return { status: 'passed', note: 'signer.unpinned' };
    const valid = orgKeysAt(trust, org, instantMicros(b.data.record.timestamp));
    if (!trust.orgs.has(org)) fail('signer.unknown_org', `organisation '${org}' is not in the trust store`, { org });
    if (!valid.includes(b.signerKey.hex)) {
      fail(
        'signer.untrusted_key',
        `the signer key is not a key of '${org}' valid at ${b.data.record.timestamp} (unknown, not yet valid, expired or revoked)`,
        { org, timestamp: b.data.record.timestamp },
      );
    }
    return { status: 'passed', note: 'signer.pinned', params: { org } };
  },

  signature(b) {
    const bad = sm2Verify(canonicalBytes(b.data.record), b.signature, b.signerKey);
    if (bad) fail('signature.invalid', `SM2 signature does not verify: ${bad}`);
  },

  checkpoint(b) {
    const bundleKey = b.data.log.log_key;
    let logKey;
    let key;
    const pinned = Boolean(b.trust?.logs.length);
    if (pinned) {
      // provenance/verify.py _log_verifier: the bundle's key name must be pinned; its key is not used.
      const names = b.trust.logs.map((k) => k.name);
      if (bundleKey && !names.includes(bundleKey.name)) {
        fail('checkpoint.unpinned_key', `log key '${bundleKey.name}' is not pinned in the trust store`, { key: bundleKey.name });
      }
      const lk = bundleKey ? b.trust.logs.find((k) => k.name === bundleKey.name) : b.trust.logs[0];
      logKey = { name: lk.name };
      key = lk.key;
    } else {
      logKey = bundleKey;
      if (!logKey) fail('checkpoint.no_log_key', 'no log key: pass a trust file or a bundle that names its log key');
      try {
        key = parsePublicKey(logKey.public_key);
      } catch (e) {
        if (!(e instanceof KeyError)) throw e;
        fail('checkpoint.bad_log_key', `log key in the bundle is not a valid SM2 key: ${e.message}`);
      }
    }
    try {
      b.checkpoint = verifyCheckpoint(b.data.log.checkpoint, logKey.name, key);
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      const reason = { no_signature: 'checkpoint.no_signature', bad_signature: 'checkpoint.bad_signature' }[e.reason];
      fail(reason ?? 'checkpoint.malformed', e.message, { key: logKey.name });
    }
    const witnessed = witnessQuorum(b);
    const size = b.checkpoint.size;
    const treeSize = BigInt(b.data.log.tree_size);
    if (size !== treeSize) {
      fail('checkpoint.size_mismatch', `checkpoint is for tree size ${size}, the proof for ${treeSize}`, {
        checkpoint_size: String(size),
        proof_size: String(treeSize),
      });
    }
    if (witnessed) return { status: 'passed', note: 'checkpoint.witnessed', params: { key: logKey.name, ...witnessed } };
    return { status: 'passed', note: pinned ? 'checkpoint.pinned' : 'checkpoint.unpinned', params: { key: logKey.name } };
  },

  inclusion(b) {
    const { leaf_index: index, tree_size: size } = b.data.log;
    if (index >= size) fail('inclusion.index', `leaf index ${index} is outside tree size ${size}`, { index, size });
    const entry = canonicalBytes({ record: b.data.record, signature: b.data.signature });
    try {
      verifyInclusion(leafHash(entry), index, size, b.proof, b.checkpoint.root);
    } catch (e) {
      if (!(e instanceof ProofError)) throw e;
      fail('inclusion.invalid', e.message, { index, size });
    }
  },

  anchor(b) {
    const a = b.data.anchor;
    // `provenance verify` requires an anchor unless told --allow-unanchored; the page takes the default.
    if (!a) fail('anchor.missing', 'the bundle has no on-chain anchor (not anchored yet?)');
    const cp = b.checkpoint;
    if (BigInt(a.tree_size) !== cp.size || !equalBytes(fromHex(a.root.slice(2)), cp.root)) {
      fail('anchor.mismatch', 'the anchor is for a different (size, root) than the checkpoint', {
        anchor_size: a.tree_size,
        checkpoint_size: String(cp.size),
      });
    }
    return { status: 'passed', note: 'anchor.offline', params: { chain_id: a.chain_id } };
  },
};

/**
 * Verify a bundle (JSON text or parsed value), with pinned keys when `trust` (from parseTrust) is given.
 * Never throws for bad input: returns
 * {ok, failedStep, steps: [{step, status, reason, note, params, detail}], bundle, checkpoint}.
 */
export function verifyBundle(input, { trust = null } = {}) {
  const steps = [];
  let data = input;
  let b = null;
  try {
    if (typeof input === 'string') {
      try {
        data = parseJson(input);
      } catch (e) {
        fail('schema.json', `evidence bundle is not valid JSON: ${e.message}`);
      }
    }
    b = readBundle(data);
    b.trust = trust;
  } catch (e) {
    if (!(e instanceof StepFailure)) throw e;
    steps.push({ step: 'schema', status: 'failed', reason: e.reason, params: e.params, detail: e.message });
    for (const step of STEPS) steps.push({ step, status: 'skipped', reason: 'not_checked' });
    return { ok: false, failedStep: 'schema', steps, bundle: data && typeof data === 'object' ? data : null };
  }
  let failedStep = null;
  for (const step of STEPS) {
    if (failedStep) {
      steps.push({ step, status: 'skipped', reason: 'not_checked' });
      continue;
    }
    try {
      const out = STEP_FUNCS[step](b) ?? {};
      steps.push({ step, status: out.status ?? 'passed', reason: out.reason ?? null, note: out.note ?? null, params: out.params ?? {} });
    } catch (e) {
      failedStep = step;
      if (e instanceof StepFailure) {
        steps.push({ step, status: 'failed', reason: e.reason, params: e.params, detail: e.message });
      } else {
        // A bug or an input the ported code did not foresee: still a failure of this step, never a pass.
        steps.push({ step, status: 'failed', reason: 'internal', params: {}, detail: String(e?.message ?? e) });
      }
    }
  }
  return { ok: failedStep === null, failedStep, steps, bundle: b.data, checkpoint: b.checkpoint ?? null };
}
