// The verification steps of an evidence bundle, in the order and with the names of provenance/verification/verify.py
// (Verifier.verify) offline, which is what `provenance verify [--trust FILE] BUNDLE` does.
// Each step yields passed / failed / skipped (not checked) / warning (held against keys the bundle
// carries itself) with a reason key (translated by the page) and, on failure, the technical message in
// English (the same wording as the Python verifier where it can be). The verdict follows verify.py's:
// "verified" only with pinned organisation and log keys, else "consistent"; "failed" when a step fails.
import { b64decode, b64encode, fromHex, equalBytes, toHex } from './bytes.js';
import { canonicalBytes, isFloatLiteral, parseJson, JsonError } from './jcs.js';
import { leafHash, verifyInclusion, ProofError } from './merkle.js';
import { checkQuorum, QuorumError } from './cosignature.js';
import { verifyCheckpoint, CheckpointError } from './note.js';
import { schemaError } from './schema.js';
import { KeyError, parsePublicKey, sm2Verify, sm3 } from './sm.js';
import { instantMicros, logKeySignsAfter, orgKeysAt } from './trust.js';

export const STEPS = ['digest', 'payload', 'signer', 'signature', 'checkpoint', 'inclusion', 'anchor'];
// A bundle for one item of a batch record (a reading of an env.batch) has step "item" after "payload", and
// "batch_anchor" last: the batch root's anchor in its domain contract (verify.py ITEM_STEPS).
export const ITEM_STEPS = ['digest', 'payload', 'item', 'signer', 'signature', 'checkpoint', 'inclusion', 'anchor', 'batch_anchor'];
// provenance/verification/verify.py LISTED_FIELDS: what a history listing says that the bundle must say too.
const LISTED_FIELDS = ['kind', 'org', 'subject', 'timestamp'];

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

/** Canonical base64 (provenance/records.py b64decode), or null. */
function strictB64(text) {
  const raw = b64decode(text);
  return raw !== null && b64encode(raw) === text ? raw : null;
}

/** Parse and check the shape of a bundle (the Python side's EvidenceBundle.from_dict). */
function readBundle(data) {
  const err = schemaError(data);
  if (err) fail('schema.invalid', `evidence bundle does not match the schema at ${err.path}: ${err.message}`, err);
  if (instantMicros(data.record.timestamp) === null) {
    fail('schema.invalid', `timestamp is not a valid date-time: ${data.record.timestamp}`, { path: 'record/timestamp' });
  }
  const signature = strictB64(data.signature);
  if (!signature) fail('schema.invalid', 'signature is not valid base64', { path: 'signature' });
  const proof = data.log.inclusion_proof.map((p) => strictB64(p));
  if (proof.some((p) => p === null)) fail('schema.invalid', 'inclusion proof hash is not valid base64', { path: 'log/inclusion_proof' });
  const itemProof = data.item ? data.item.inclusion_proof.map((p) => strictB64(p)) : [];
  if (itemProof.some((p) => p === null)) fail('schema.invalid', 'item proof hash is not valid base64', { path: 'item/inclusion_proof' });
  return { data, signature, proof, itemProof };
}

/** Text of a value the gateway listed (any JSON), never throwing. */
function shown(v) {
  try {
    return (typeof v === 'string' ? v : JSON.stringify(v) ?? '').slice(0, 80);
  } catch {
    return '?';
  }
}

/** provenance/verification/verify.py check_listed: the bundle is the record the listing names. */
function checkListed(b, listed) {
  const { item, subject, duplicate } = listed;
  if (duplicate) {
    fail('listing.duplicate', `the listing names record ${shown(item.id)} more than once`, { listed: shown(item.id) });
  }
  if (item.id !== b.data.digest) {
    fail('listing.other_record', `the listing names record ${shown(item.id)}, the bundle is record ${b.data.digest}`, {
      listed: shown(item.id),
    });
  }
  const expected = { ...item, ...(subject !== undefined && subject !== null ? { subject } : {}) };
  for (const field of LISTED_FIELDS) {
    const signed = b.data.record[field];
    if (Object.hasOwn(expected, field) && expected[field] !== signed) {
      fail('listing.mismatch', `the listing says ${field} '${shown(expected[field])}', the signed record '${signed}'`, {
        field,
        listed: shown(expected[field]),
        signed,
      });
    }
  }
}

/** The trust file's witness policy applied to the checkpoint (provenance/log/cosignature.py require_quorum). */
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
    if (!Object.hasOwn(b.data, 'payload') || b.data.payload === null) return { status: 'skipped', reason: 'payload.absent' };
    let bytes;
    try {
      bytes = canonicalBytes(b.data.payload, b.data, 'payload');
    } catch (e) {
      fail('payload.uncanonical', `payload cannot be canonicalised: ${e.message}`);
    }
    const actual = toHex(sm3(bytes));
    const expected = b.data.record.payload_digest;
    if (actual !== expected) {
      fail('payload.mismatch', 'payload does not match the payload digest the organisation signed', { expected, actual });
    }
  },

  // provenance/verification/verify.py _item: the reading is a leaf of the root the signed batch head names.
  item(b) {
    const item = b.data.item;
    const batch = b.data.payload;
    if (!batch || typeof batch !== 'object' || Array.isArray(batch)) {
      fail('item.no_batch', 'the batch payload is not in the bundle: an item verifies only against the root it names');
    }
    const { root, count } = batch;
    if (typeof root !== 'string' || !/^[0-9a-f]{64}$/.test(root)) fail('item.no_root', 'the batch payload names no Merkle root (64 lowercase hex)');
    if (!Number.isInteger(count) || isFloatLiteral(batch, 'count') || count !== item.count) {
      fail('item.count', `the item claims ${item.count} items in its batch, the signed batch ${shown(count)}`, {
        item_count: item.count,
        batch_count: shown(count),
      });
    }
    let leaf;
    try {
      leaf = canonicalBytes(item.document, item, 'document');
    } catch (e) {
      fail('item.uncanonical', `the item cannot be canonicalised: ${e.message}`);
    }
    try {
      verifyInclusion(leafHash(leaf), item.index, item.count, b.itemProof, fromHex(root));
    } catch (e) {
      if (!(e instanceof ProofError)) throw e;
      fail('item.invalid', `item ${item.index}: ${e.message} (the item or its proof was altered)`, { index: item.index, count: item.count });
    }
    return { status: 'passed', note: 'item.in_batch', params: { index: item.index, count: item.count } };
  },

  signer(b) {
    const { org, kind } = b.data.record;
    const signer = b.data.signer.org;
    if (signer !== org) fail('signer.org_mismatch', `bundle names signer '${signer}' but the record is by '${org}'`, { signer, org });
    try {
      b.signerKey = parsePublicKey(b.data.signer.public_key);
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      fail('signer.bad_key', `signer public key is not a valid SM2 key: ${e.message}`);
    }
    const trust = b.trust;
    // Without pinned keys the key is the bundle's own: integrity, not attribution (never a green tick).
    if (!trust) return { status: 'warning', reason: 'signer.unpinned' };
    const entry = trust.orgs.get(org);
    if (!entry) fail('signer.unknown_org', `organisation '${org}' is not in the trust store`, { org });
    if (!orgKeysAt(trust, org, instantMicros(b.data.record.timestamp)).includes(b.signerKey.hex)) {
      fail(
        'signer.untrusted_key',
        `the signer key is not a key of '${org}' valid at ${b.data.record.timestamp} (unknown, not yet valid, expired or revoked)`,
        { org, timestamp: b.data.record.timestamp },
      );
    }
    // provenance/verification/trust.py TrustStore.may_record, on the trust file's `kinds`. A trust file from
    // before the field pins no roles; the Python side then reads the installed domains, which a page has not.
    if (!trust.kinds) return { status: 'warning', reason: 'signer.roles_unpinned', params: { org, role: entry.role } };
    if (!(trust.kinds.get(kind) ?? []).includes(entry.role)) {
      fail('signer.role_forbidden', `'${org}' is a ${entry.role}, which may not record ${kind}`, { org, role: entry.role, kind });
    }
    return { status: 'passed', note: trust.source === 'chain' ? 'signer.chain' : 'signer.pinned', params: { org, role: entry.role } };
  },

  signature(b) {
    const bad = sm2Verify(canonicalBytes(b.data.record), b.signature, b.signerKey);
    if (bad) fail('signature.invalid', `SM2 signature does not verify: ${bad}`);
  },

  checkpoint(b) {
    const bundleKey = b.data.log.log_key;
    let candidates; // [{name, key, origin}]: several under one name when the log key was rotated
    const pinned = Boolean(b.trust?.logs.length);
    if (pinned) {
      // provenance/verification/verify.py _log_verifiers: the bundle's key name must be pinned; its key is not used.
      candidates = b.trust.logs.filter((k) => !bundleKey || k.name === bundleKey.name);
      if (!candidates.length) {
        fail('checkpoint.unpinned_key', `log key '${bundleKey.name}' is not pinned in the trust store`, { key: bundleKey.name });
      }
      // A rotated log key: a key whose window ended by the record's time cannot have signed its checkpoint.
      const at = b.data.record.timestamp;
      candidates = candidates.filter((k) => logKeySignsAfter(k, instantMicros(at)));
      if (!candidates.length) {
        fail('checkpoint.log_key_ended', `every pinned log key ended (expired or revoked) by ${at}, the record's time`, { timestamp: at });
      }
    } else {
      if (!bundleKey) fail('checkpoint.no_log_key', 'no log key: pass a trust file or a bundle that names its log key');
      let key;
      try {
        key = parsePublicKey(bundleKey.public_key);
      } catch (e) {
        if (!(e instanceof KeyError)) throw e;
        fail('checkpoint.bad_log_key', `log key in the bundle is not a valid SM2 key: ${e.message}`);
      }
      candidates = [{ name: bundleKey.name, key, origin: null }];
    }
    let first = null;
    let used = null;
    for (const c of candidates) {
      try {
        b.checkpoint = verifyCheckpoint(b.data.log.checkpoint, c.name, c.key, c.origin);
        used = c;
        break;
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
        first ??= { e, name: c.name };
      }
    }
    if (!used) {
      const reason = { no_signature: 'checkpoint.no_signature', bad_signature: 'checkpoint.bad_signature', origin: 'checkpoint.origin' }[first.e.reason];
      fail(reason ?? 'checkpoint.malformed', first.e.message, { key: first.name, ...(first.e.params ?? {}) });
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
    if (!pinned) return { status: 'warning', reason: b.trust ? 'checkpoint.unpinned_trust' : 'checkpoint.unpinned', params: { key: used.name } };
    if (witnessed) return { status: 'passed', note: 'checkpoint.witnessed', params: { key: used.name, origin: used.origin, ...witnessed } };
    if (b.trust.source === 'chain') return { status: 'passed', note: 'checkpoint.chain', params: { key: used.name } };
    return { status: 'passed', note: 'checkpoint.pinned', params: { key: used.name, origin: used.origin } };
  },

  inclusion(b) {
    const { leaf_index: index, tree_size: size } = b.data.log;
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
    const pinnedChain = b.trust?.chainId ?? null;
    const pinnedLog = b.trust?.provenanceLog ?? null;
    if (pinnedChain !== null && a.chain_id !== pinnedChain) {
      fail('anchor.other_chain', `the anchor is on chain ${a.chain_id}, the trust file pins chain ${pinnedChain}`, {
        chain_id: a.chain_id,
        pinned: pinnedChain,
      });
    }
    if (pinnedLog !== null && a.contract.toLowerCase() !== pinnedLog.toLowerCase()) {
      fail('anchor.other_contract', `the anchor names contract ${a.contract}, the trust file pins ProvenanceLog ${pinnedLog}`, {
        contract: a.contract,
        pinned: pinnedLog,
      });
    }
    // With a chain node the anchor is looked up afterwards (chain.js, settleAnchor): until then no verdict.
    if (b.online) return { status: 'pending', reason: 'anchor.checking', params: { chain_id: a.chain_id } };
    // Offline the page never looks anchors up: not checked, never passed (`provenance verify --rpc` does it).
    const reason = pinnedChain !== null && pinnedLog !== null ? 'anchor.offline_pinned' : 'anchor.offline';
    return { status: 'skipped', reason, params: { chain_id: a.chain_id } };
  },

  // provenance/verification/verify.py _batch_anchor: the anchor names the root the station signed, on the
  // pinned chain. The page does not look it up on chain (`provenance verify --rpc` does): never passed.
  batch_anchor(b) {
    const a = b.data.batch_anchor;
    if (!a) return { status: 'skipped', reason: 'batch_anchor.missing' };
    const signed = b.data.payload?.root;
    if (a.root.slice(2) !== signed) {
      fail('batch_anchor.other_root', 'the batch anchor names another Merkle root than the signed batch', {
        anchored: a.root.slice(2),
        signed: shown(signed),
      });
    }
    const pinnedChain = b.trust?.chainId ?? null;
    if (pinnedChain !== null && a.chain_id !== pinnedChain) {
      fail('batch_anchor.other_chain', `the batch anchor is on chain ${a.chain_id}, the trust file pins chain ${pinnedChain}`, {
        chain_id: a.chain_id,
        pinned: pinnedChain,
      });
    }
    const params = { chain_id: a.chain_id, block: a.block_number, contract: a.contract };
    // With a chain node it is looked up afterwards (chain.js checkBatchAnchor): until then no verdict.
    if (b.online) return { status: 'pending', reason: 'batch_anchor.checking', params };
    return { status: 'skipped', reason: 'batch_anchor.offline', params };
  },
};

/**
 * The chain's answer for a result whose anchor step is pending (verifyBundle with `online`): a warning
 * reason (held, on the node's word) or a failure {reason, params, detail}; the verdict follows.
 */
export function settleAnchor(result, outcome, name = 'anchor') {
  const { warning = null, failure = null } = outcome;
  const step = result.steps.find((s) => s.step === name);
  if (!step || step.status !== 'pending') return result;
  if (failure) {
    Object.assign(step, { status: 'failed', reason: failure.reason, params: failure.params ?? {}, detail: failure.detail ?? '' });
    result.ok = false;
    // The first failed step in order names the verdict (the anchor comes before the batch anchor).
    const failed = result.steps.find((s) => s.status === 'failed');
    result.failedStep = failed ? failed.step : name;
  } else {
    Object.assign(step, { status: 'warning', reason: warning, params: step.params });
  }
  result.verdict = verdictOf(result.steps);
  return result;
}

/** provenance/verification/verify.py verdict: "verified", "consistent" or "failed". */
export function verdictOf(steps) {
  const status = Object.fromEntries(steps.map((s) => [s.step, s.status]));
  if (!steps.length || steps.some((s) => s.status === 'failed')) return 'failed';
  if (steps.some((s) => s.status === 'pending')) return 'pending';
  return status.signer === 'passed' && status.checkpoint === 'passed' ? 'verified' : 'consistent';
}

/**
 * Verify a bundle (JSON text or parsed value), with pinned keys when `trust` (from parseTrust) is given and,
 * for a bundle fetched for a history row, `listed` = {item, subject, duplicate} (step "listing" first;
 * `duplicate`: the listing named this record before).
 * Never throws for bad input: returns
 * {ok, verdict, failedStep, steps: [{step, status, reason, note, params, detail}], bundle, checkpoint}.
 */
export function verifyBundle(input, { trust = null, listed = null, online = false } = {}) {
  const steps = [];
  let data = input;
  let b = null;
  let order = listed ? ['listing', ...STEPS] : STEPS;
  try {
    if (typeof input === 'string') {
      try {
        data = parseJson(input);
      } catch (e) {
        if (!(e instanceof JsonError)) throw e;
        fail('schema.json', `evidence bundle is not valid JSON: ${e.message}`);
      }
    }
    if (data && typeof data === 'object' && Object.hasOwn(data, 'item')) order = listed ? ['listing', ...ITEM_STEPS] : ITEM_STEPS;
    b = readBundle(data);
    // A function: the trust store for this bundle (the chain's, under the bundle's log key name).
    b.trust = typeof trust === 'function' ? trust(data) : trust;
    b.online = online;
  } catch (e) {
    const failure = e instanceof StepFailure ? e : new StepFailure('internal', String(e?.message ?? e));
    steps.push({ step: 'schema', status: 'failed', reason: failure.reason, params: failure.params, detail: failure.message });
    for (const step of order) steps.push({ step, status: 'skipped', reason: 'not_checked' });
    return { ok: false, verdict: 'failed', failedStep: 'schema', steps, bundle: data && typeof data === 'object' ? data : null };
  }
  const funcs = { ...STEP_FUNCS, listing: (x) => checkListed(x, listed) };
  let failedStep = null;
  for (const step of order) {
    if (failedStep) {
      steps.push({ step, status: 'skipped', reason: 'not_checked' });
      continue;
    }
    try {
      const out = funcs[step](b) ?? {};
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
  return { ok: failedStep === null, verdict: verdictOf(steps), failedStep, steps, bundle: b.data, checkpoint: b.checkpoint ?? null };
}
