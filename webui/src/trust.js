// Pinned keys from a trust file (`provenance orgs export`): a port of provenance/verification/trust.py. The file is
// checked against the same schema (provenance/schemas/trust.schema.json); a file that does not load is an
// error, never a silent "no trust file". With one, the signer step checks the organisation's key valid
// at the record's time and its role, and the checkpoint step uses the pinned log key and origin.
import { parseJson, JsonError } from './jcs.js';
import { trustSchemaError } from './schema.js';
import { parsePublicKey, KeyError } from './sm.js';

export class TrustError extends Error {}

const TS = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$/;
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Days from 1970-01-01 to a proleptic Gregorian date (exact for years 1..9999; Date.UTC maps 0..99 to 19xx). */
function daysFromCivil(y, m, d) {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Microseconds since the epoch of an envelope timestamp (provenance/records.py parse_timestamp: the
 * pattern and a real calendar instant, years 1 to 9999), or null when it is not one.
 */
export function instantMicros(ts) {
  const m = typeof ts === 'string' ? TS.exec(ts) : null;
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const leap = (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  const days = mo === 2 && !leap ? 28 : DAYS[mo - 1];
  if (!(y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= days && h < 24 && mi < 60 && s < 60)) return null;
  const seconds = BigInt(daysFromCivil(y, mo, d)) * 86400n + BigInt(h * 3600 + mi * 60 + s);
  return seconds * 1000000n + BigInt((m[7] ?? '').padEnd(6, '0'));
}

function instant(v) {
  if (v === null || v === undefined) return null;
  const at = instantMicros(v);
  if (at === null) throw new TrustError(`trust file has a bad entry: timestamp is not a valid date-time: ${v}`);
  return at;
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
    data = parseJson(text);
  } catch (e) {
    if (e instanceof JsonError) throw new TrustError(`trust file is not valid JSON: ${e.message}`);
    throw e;
  }
  const err = trustSchemaError(data);
  if (err) throw new TrustError(`trust file does not match the schema at ${err.path}: ${err.message}`);
  const orgs = new Map();
  for (const o of data.orgs) {
    if (orgs.has(o.id)) throw new TrustError(`trust file lists organisation '${o.id}' twice`);
    const keys = o.keys.map((k) => ({
      hex: key(k.public_key).hex,
      validFrom: instant(k.valid_from),
      validUntil: instant(k.valid_until),
      revokedAt: instant(k.revoked_at),
    }));
    orgs.set(o.id, { id: o.id, role: o.role, name: o.name ?? '', keys });
  }
  const logs = [];
  for (const lk of data.logs) {
    const k = key(lk.public_key);
    if (logs.some((l) => l.name === lk.name && l.key.hex === k.hex)) throw new TrustError(`trust file lists log key '${lk.name}' twice`);
    logs.push({ name: lk.name, key: k, origin: lk.origin, validUntil: instant(lk.valid_until), revokedAt: instant(lk.revoked_at) });
  }
  const chain = data.chain ?? {};
  const witnesses = data.witnesses ? parseWitnesses(data.witnesses) : null;
  // Record kind -> roles that may record it (null: a trust file from before `kinds`, which pins no roles).
  const kinds = data.kinds ? new Map(Object.entries(data.kinds)) : null;
  return { orgs, logs, chainId: chain.chain_id ?? null, provenanceLog: chain.provenance_log ?? null, witnesses, kinds };
}

/** The witness policy ({quorum, keys: [{name, org, key}]}): provenance/log/cosignature.py WitnessPolicy.from_dict. */
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

/**
 * Whether log key `k` may have signed the checkpoint of a record dated `at` (µs): its window did not end by
 * then (provenance/verification/trust.py LogKey.signs_after; a checkpoint is signed after its records).
 */
export const logKeySignsAfter = (k, at) =>
  (k.validUntil === null || at < k.validUntil) && (k.revokedAt === null || at < k.revokedAt);

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
