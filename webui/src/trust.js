// Pinned keys from a trust file (`provenance orgs export`): a port of provenance/trust.py. With one,
// the signer step checks the organisation's key valid at the record's time and the checkpoint step uses
// the pinned log key, as `provenance verify --trust` does.
import { parsePublicKey, KeyError } from './sm.js';

export class TrustError extends Error {}

const TS = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$/;

/** Microseconds since the epoch of an envelope timestamp (exact: Python compares datetimes to the µs). */
export function instantMicros(ts) {
  const m = typeof ts === 'string' ? TS.exec(ts) : null;
  if (!m) throw new TrustError(`timestamp must be RFC 3339 UTC like 2026-01-02T03:04:05.678Z: ${ts}`);
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return BigInt(ms) * 1000n + BigInt((m[7] ?? '').padEnd(6, '0') || '0');
}

function optInstant(v) {
  return v === null || v === undefined ? null : instantMicros(v);
}

function key(pem) {
  try {
    return parsePublicKey(pem);
  } catch (e) {
    if (e instanceof KeyError) throw new TrustError(`trust file has a bad entry: ${e.message}`);
    throw e;
  }
}

/** Parse a trust file (JSON text); throws TrustError. */
export function parseTrust(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new TrustError(`trust file is not valid JSON: ${e.message}`);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data) || data.version !== 1) {
    throw new TrustError('trust file must be an object with version 1');
  }
  try {
    const orgs = new Map();
    for (const o of data.orgs ?? []) {
      if (!('id' in o)) throw new TypeError("'id'");
      const keys = (o.keys ?? []).map((k) => {
        if (!('public_key' in k)) throw new TypeError("'public_key'");
        return {
          hex: key(k.public_key).hex,
          validFrom: optInstant(k.valid_from),
          validUntil: optInstant(k.valid_until),
          revokedAt: optInstant(k.revoked_at),
        };
      });
      orgs.set(o.id, { id: o.id, role: o.role ?? '', name: o.name ?? '', keys });
    }
    const logs = (data.logs ?? []).map((lk) => {
      if (!('name' in lk) || !('public_key' in lk)) throw new TypeError("'name' or 'public_key'");
      return { name: lk.name, key: key(lk.public_key), origin: lk.origin ?? null };
    });
    const witnesses = data.witnesses ? parseWitnesses(data.witnesses) : null;
    return { orgs, logs, witnesses };
  } catch (e) {
    if (e instanceof TrustError) throw e;
    throw new TrustError(`trust file entry is missing a field: ${e.message}`);
  }
}

/** The witness policy ({quorum, keys: [{name, org, key}]}): provenance/cosignature.py WitnessPolicy.from_dict. */
function parseWitnesses(doc) {
  const bad = (message) => new TrustError(`trust file has a bad witness policy: ${message}`);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw bad("'witnesses' must be an object with 'quorum' and 'keys'");
  if (!Array.isArray(doc.keys)) throw bad("'witnesses.keys' must be a list");
  const keys = doc.keys.map((k, i) => {
    if (!k || typeof k !== 'object' || typeof k.name !== 'string') throw bad(`witness ${i + 1} has no 'name'`);
    if (typeof k.public_key !== 'string' || typeof (k.org ?? '') !== 'string') {
      throw bad(`witness '${k.name}' needs a 'public_key' PEM (and 'org' as text)`);
    }
    let key;
    try {
      key = parsePublicKey(k.public_key);
    } catch (e) {
      if (e instanceof KeyError) throw bad(`witness '${k.name}': ${e.message}`);
      throw e;
    }
    return { name: k.name, org: k.org ?? '', key };
  });
  const n = keys.length;
  if (n < 1 || n > 64) throw bad(`a witness policy names 1 to 64 witnesses, not ${n}`);
  const q = doc.quorum;
  if (!Number.isInteger(q) || q < 1 || q > n) throw bad(`witness quorum ${JSON.stringify(q)} is not a number from 1 to ${n} (the witnesses named)`);
  if (new Set(keys.map((k) => k.name)).size !== n || new Set(keys.map((k) => k.key.hex)).size !== n) {
    throw bad('a witness policy names the same witness (name or key) more than once');
  }
  return { quorum: q, keys };
}

/** Public keys (04‖x‖y hex) of `org` valid at `at` (µs): [valid_from, valid_until) and before revoked_at. */
export function orgKeysAt(trust, org, at) {
  const entry = trust.orgs.get(org);
  if (!entry) return [];
  return entry.keys
    .filter((k) => !(k.validFrom !== null && at < k.validFrom))
    .filter((k) => !(k.validUntil !== null && at >= k.validUntil))
    .filter((k) => !(k.revokedAt !== null && at >= k.revokedAt))
    .map((k) => k.hex);
}
