// Strict JSON reading and RFC 8785 canonical bytes, as provenance/records.py does them (load_json,
// canonical_bytes). Every rule here is one the Python side applies too; where JSON.parse is more lenient
// (duplicate keys, a byte order mark, integers it rounds) the difference would let the two verifiers read
// one text as two documents.
import canonicalize from 'canonicalize';
import { utf8 } from './bytes.js';

// provenance/records.py MAX_JSON_DEPTH and _MAX_DEPTH; Python's int() refuses longer digit strings.
export const MAX_JSON_DEPTH = 256;
const MAX_CANONICAL_DEPTH = 200;
const MAX_INT_DIGITS = 4300;
const SAFE = 2 ** 53;

export class JsonError extends Error {}

// holder -> keys whose integer literal lies beyond ±(2^53-1): JSON.parse rounds such numbers silently;
// the Python side refuses to canonicalise them (FORMAT_INVALID), so the page must too.
const unsafeIntegers = new WeakMap();
// holder -> keys whose number was written with a fraction or an exponent (1.0, 1e2): not an integer
// where a schema wants one, though JSON.parse gives the same number as for 1 and 100.
const floatLiterals = new WeakMap();

const mark = (map, holder, key) => {
  if (!map.has(holder)) map.set(holder, new Set());
  map.get(holder).add(String(key));
};
const marked = (map, holder, key) => Boolean(holder && map.get(holder)?.has(String(key)));

/** Whether `holder[key]` was written as a number with a fraction or an exponent. */
export const isFloatLiteral = (holder, key) => marked(floatLiterals, holder, key);

/**
 * The exact decimal value of a number text as "sign digits e exponent" without spare zeros ("0" for zero),
 * or null for text that is not a decimal number ("Infinity"): provenance/records.py _decimal.
 */
export function decimalKey(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return null;
  const frac = m[3] ?? '';
  const digits = (m[2] + frac).replace(/^0+/, '');
  if (!digits) return '0';
  const stripped = digits.replace(/0+$/, '');
  const exp = BigInt(m[4] ?? '0') - BigInt(frac.length) + BigInt(digits.length - stripped.length);
  return `${m[1]}${stripped}e${exp}`;
}

/** Depth and duplicate keys of valid JSON text (provenance/records.py _check_depth, _no_duplicates). */
function checkStructure(text) {
  const stack = []; // a Set of the keys seen for an object, null for an array
  let lastString = null;
  const token = /"(?:[^"\\]|\\.)*"|[{}[\]:]/g;
  for (let m = token.exec(text); m; m = token.exec(text)) {
    const t = m[0];
    if (t === '{' || t === '[') {
      stack.push(t === '{' ? new Set() : null);
      if (stack.length > MAX_JSON_DEPTH) throw new JsonError(`nested more than ${MAX_JSON_DEPTH} levels deep`);
    } else if (t === '}' || t === ']') {
      stack.pop();
    } else if (t === ':') {
      const key = JSON.parse(lastString);
      const keys = stack.at(-1);
      if (keys.has(key)) throw new JsonError(`duplicate key '${key.slice(0, 80)}'`);
      keys.add(key);
    } else {
      lastString = t;
    }
  }
}

/** Parse JSON text as strictly as the Python verifier; throws JsonError. Needs JSON.parse source access. */
export function parseJson(text) {
  if (typeof text !== 'string') throw new JsonError('not text');
  if (text.startsWith('\ufeff')) throw new JsonError('it starts with a byte order mark (U+FEFF)');
  let value;
  try {
    value = JSON.parse(text, function reviver(key, v, context) {
      if (typeof v === 'number' && typeof context?.source === 'string') {
        const source = context.source;
        if (/^-?\d+$/.test(source)) {
          if (source.replace('-', '').length > MAX_INT_DIGITS) throw new JsonError(`an integer has more than ${MAX_INT_DIGITS} digits`);
          if (!Number.isSafeInteger(v)) mark(unsafeIntegers, this, key);
        } else {
          mark(floatLiterals, this, key);
          // provenance/records.py exact_float: 1e-400 reads as 0, 0.10000000000000000555 as 0.1; the text
          // would show one number while the canonical form (and so the digest) holds another.
          const shortest = String(v);
          if (decimalKey(source) !== decimalKey(shortest)) {
            throw new JsonError(`number ${source.slice(0, 40)} is not exactly the value a reader holds (${shortest}): write it as that`);
          }
        }
      }
      return v;
    });
  } catch (e) {
    throw e instanceof JsonError ? e : new JsonError(e.message);
  }
  checkStructure(text);
  return value;
}

/** provenance/records.py _check_value: the values whose canonical form could not be read back. */
function checkDomain(root, holder, key) {
  if (marked(unsafeIntegers, holder, key)) throw new Error('an integer is beyond ±(2^53-1)');
  const stack = [[root, 0]];
  while (stack.length) {
    const [value, depth] = stack.pop();
    if (typeof value === 'number') {
      const a = Math.abs(value);
      if (Number.isInteger(value) && a >= SAFE && a < 1e21) {
        throw new Error(`number ${value} is not exactly representable in JSON: send it as a string`);
      }
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    const children = Array.isArray(value) ? value : Object.values(value);
    if (children.length && depth >= MAX_CANONICAL_DEPTH) throw new Error('value is nested too deeply to canonicalise');
    if (unsafeIntegers.has(value)) throw new Error('an integer is beyond ±(2^53-1)');
    for (const v of children) stack.push([v, depth + 1]);
  }
}

/**
 * UTF-8 JCS bytes of a JSON value (`holder[key]` when it came from parseJson: a lone number is checked
 * through its holder); throws when the value has no canonical form.
 */
export function canonicalBytes(value, holder = null, key = null) {
  checkDomain(value, holder, key);
  return utf8(canonicalize(value));
}
