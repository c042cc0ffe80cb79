// Checkpoints as C2SP signed notes signed with SM2: a port of provenance/log/checkpoint.py (parsing and
// verification only). Format and choices: docs/design/checkpoint-note.md.
import { b64decode, b64encode, concat, equalBytes, toHex, utf8 } from './bytes.js';
import { sha256, sm2Verify } from './sm.js';

export const SIGNATURE_TYPE = concat(Uint8Array.of(0xff), utf8('shancheng-provenance/sm2-sm3'));
const KEY_ID_SIZE = 4;
const ROOT_SIZE = 32;
const MAX_NOTE_BYTES = 1 << 20;
const MAX_SIGNATURES = 100;
const MAX_EXTENSIONS = 16;
const MAX_TREE_SIZE = (1n << 64n) - 1n;
const EM_DASH_PREFIX = '\u2014 ';
const CONTROL = /[\x00-\x09\x0b-\x1f]/;
// Python's str.isspace(), which the reference uses for key names (JS \s differs at U+0085 and U+FEFF).
const PY_SPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

export class CheckpointError extends Error {}

function strictB64(text, what) {
  const raw = b64decode(text);
  if (raw === null) throw new CheckpointError(`${what} is not valid base64`);
  if (b64encode(raw) !== text) throw new CheckpointError(`${what} is not canonical base64`);
  return raw;
}

function checkKeyName(name) {
  if (!name) throw new CheckpointError('key name must be a non-empty string');
  if (PY_SPACE.test(name) || name.includes('+') || CONTROL.test(name)) {
    throw new CheckpointError(`key name '${name}' must not contain spaces, '+' or control characters`);
  }
}

/** The 4-byte key ID: SHA-256(name ‖ 0x0A ‖ signature type ‖ SPKI DER)[:4]. */
export function keyId(name, publicKey) {
  checkKeyName(name);
  return sha256(concat(utf8(name), Uint8Array.of(0x0a), SIGNATURE_TYPE, publicKey.spki)).subarray(0, KEY_ID_SIZE);
}

function parseBody(body) {
  if (!body.endsWith('\n')) throw new CheckpointError('checkpoint body does not end with a newline');
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3) {
    throw new CheckpointError(`checkpoint body has ${lines.length} lines, needs origin, tree size and root hash`);
  }
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) throw new CheckpointError('checkpoint origin line is empty');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) {
    throw new CheckpointError(`checkpoint tree size '${sizeText.slice(0, 40)}' is not a decimal number without leading zeros`);
  }
  if (sizeText.length > 20 || BigInt(sizeText) > MAX_TREE_SIZE) {
    throw new CheckpointError(`checkpoint tree size ${sizeText} does not fit in 64 bits`);
  }
  const root = strictB64(rootText, 'checkpoint root hash');
  if (root.length !== ROOT_SIZE) throw new CheckpointError(`checkpoint root hash is ${root.length} bytes, expected ${ROOT_SIZE}`);
  extensions.forEach((ext, i) => {
    if (!ext) throw new CheckpointError(`checkpoint extension line ${i + 1} is empty`);
  });
  if (extensions.length > MAX_EXTENSIONS) {
    throw new CheckpointError(`checkpoint has ${extensions.length} extension lines, at most ${MAX_EXTENSIONS}`);
  }
  return { origin, size: BigInt(sizeText), root, extensions };
}

export function openNote(text) {
  if (typeof text !== 'string') throw new CheckpointError('note must be text');
  if (!text.isWellFormed()) throw new CheckpointError('note is not valid UTF-8 (it contains a lone surrogate)');
  const size = utf8(text).length;
  if (size > MAX_NOTE_BYTES) throw new CheckpointError(`note is ${size} bytes, more than ${MAX_NOTE_BYTES}`);
  const control = CONTROL.exec(text);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw new CheckpointError(`note contains control character U+${code} at offset ${control.index}`);
  }
  if (!text.endsWith('\n')) throw new CheckpointError('note does not end with a newline');
  const split = text.lastIndexOf('\n\n');
  if (split < 0) throw new CheckpointError('note has no blank line between its text and its signatures');
  const body = text.slice(0, split + 1);
  const sigBlock = text.slice(split + 2);
  if (!sigBlock) throw new CheckpointError('note has no signature lines after the blank line');
  const lines = sigBlock.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new CheckpointError(`note has ${lines.length} signature lines, at most ${MAX_SIGNATURES}`);
  const signatures = lines.map((line, i) => {
    const n = i + 1;
    const parts = line.startsWith(EM_DASH_PREFIX) ? line.slice(EM_DASH_PREFIX.length).split(' ') : [];
    if (parts.length !== 2) throw new CheckpointError(`signature line ${n} is not '— <key name> <base64 signature>'`);
    const [name, sigB64] = parts;
    try {
      checkKeyName(name);
    } catch (e) {
      throw new CheckpointError(`signature line ${n}: ${e.message}`);
    }
    const raw = strictB64(sigB64, `signature line ${n}`);
    if (raw.length <= KEY_ID_SIZE) {
      throw new CheckpointError(`signature line ${n} is ${raw.length} bytes, too short for key ID and signature`);
    }
    return { name, keyId: raw.subarray(0, KEY_ID_SIZE), signature: raw.subarray(KEY_ID_SIZE) };
  });
  return { body, signatures };
}

/**
 * The checkpoint of `note` once the log key's signature on it verifies (signed-note rules: lines by
 * other keys are ignored, every line claiming this key must verify) and, when `origin` is given (pinned
 * by a trust file), it names that log. Throws CheckpointError.
 */
export function verifyCheckpoint(note, keyName, publicKey, origin = null) {
  const { body, signatures } = openNote(note);
  const checkpoint = parseBody(body);
  const kid = keyId(keyName, publicKey);
  const kidHex = toHex(kid);
  const mine = signatures.filter((s) => s.name === keyName && equalBytes(s.keyId, kid));
  if (!mine.length) {
    const e = new CheckpointError(`note has no signature from key ${keyName} (${kidHex})`);
    e.reason = 'no_signature';
    throw e;
  }
  const bodyBytes = utf8(body);
  for (const sig of mine) {
    const bad = sm2Verify(bodyBytes, sig.signature, publicKey);
    if (bad) {
      const e = new CheckpointError(`signature by key ${keyName} (${kidHex}) does not verify: ${bad}`);
      e.reason = 'bad_signature';
      throw e;
    }
  }
  if (origin !== null && checkpoint.origin !== origin) {
    const e = new CheckpointError(`checkpoint origin '${checkpoint.origin}' is not the expected '${origin}'`);
    e.reason = 'origin';
    e.params = { origin: checkpoint.origin, expected: origin };
    throw e;
  }
  return { ...checkpoint, keyIdHex: kidHex };
}
