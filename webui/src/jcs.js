// RFC 8785 canonical bytes, as provenance/records.py canonical_bytes (the `rfc8785` library) makes them.
import canonicalize from 'canonicalize';
import { utf8 } from './bytes.js';

// Objects and arrays holding an integer literal beyond ±(2^53-1). JSON.parse rounds such numbers
// silently; the Python side refuses to canonicalise them (FORMAT_INVALID), so the page must too.
const unsafeHolders = new WeakSet();

/** JSON.parse that remembers where integers lost precision (needs JSON.parse source access). */
export function parseJson(text) {
  return JSON.parse(text, function reviver(key, value, context) {
    if (
      typeof value === 'number' &&
      context &&
      typeof context.source === 'string' &&
      /^-?\d+$/.test(context.source) &&
      !Number.isSafeInteger(value)
    ) {
      unsafeHolders.add(this);
    }
    return value;
  });
}

function checkDomain(value) {
  if (value === null || typeof value !== 'object') return;
  if (unsafeHolders.has(value)) throw new Error('an integer is beyond ±(2^53-1)');
  for (const v of Array.isArray(value) ? value : Object.values(value)) checkDomain(v);
}

/** UTF-8 JCS bytes of a JSON value; throws when the value has no canonical form. */
export function canonicalBytes(value) {
  checkDomain(value);
  return utf8(canonicalize(value));
}
