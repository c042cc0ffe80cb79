// 国密 primitives from the npm package sm-crypto; this file only adapts encodings (no cryptography here).
import smCrypto from 'sm-crypto';
import smUtils from 'sm-crypto/src/sm2/utils.js';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { b64encode, concat, fromHex, toHex } from './bytes.js';
import { readDer, TAG } from './der.js';

const { sm2, sm3: sm3Hex } = smCrypto;

/** GM/T 0009 default distinguishing ID, used by every SM2 signature in the project. */
export const DEFAULT_ID = '1234567812345678';

// SM2 curve prime p (GB/T 32918.5); coordinates must be below it.
const P = BigInt('0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF');
const N = BigInt('0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123');
const OID_EC_PUBLIC_KEY = '2a8648ce3d0201';
const OID_SM2 = '2a811ccf5501822d';
// SubjectPublicKeyInfo DER up to the 65-byte uncompressed point (fixed layout for SM2 keys).
const SPKI_PREFIX = '3059301306072a8648ce3d020106082a811ccf5501822d034200';

export const sm3 = (bytes) => fromHex(sm3Hex(bytes));
export const sha256 = (bytes) => nobleSha256(bytes);

export class KeyError extends Error {}

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** The first PUBLIC KEY block of a PEM text, decoded to DER (provenance/crypto/_der.py pem_blocks). */
function pemPublicKeyDer(pem) {
  if (typeof pem !== 'string') throw new KeyError('not PEM');
  // Like the Python reader, every block must be well-formed, then the first PUBLIC KEY block is used.
  const blocks = [];
  for (const m of pem.matchAll(PEM_RE)) {
    const body = m[2];
    if (body.includes(':')) throw new KeyError(`encrypted or header-carrying PEM (${m[1]}) is not supported`);
    // Only the whitespace Python's bytes.split() drops: JS \s would also drop U+00A0, U+2028, U+FEFF...
    const b64 = body.replace(/[ \t\n\r\v\f]+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4) throw new KeyError(`PEM block ${m[1]} is not valid base64`);
    blocks.push([m[1], b64]);
  }
  const key = blocks.find(([label]) => label === 'PUBLIC KEY');
  if (key) return Uint8Array.from(atob(key[1]), (c) => c.charCodeAt(0));
  const found = blocks.length > 0;
  throw new KeyError(found ? 'PEM has no PUBLIC KEY block' : 'not PEM: no -----BEGIN ...----- block found');
}

/** Parse an SM2 SubjectPublicKeyInfo PEM: {hex: '04‖x‖y', spki: canonical DER bytes}. */
export function parsePublicKey(pem) {
  const der = pemPublicKeyDer(pem);
  let point;
  try {
    const outer = readDer(der);
    const spki = readDer(outer.read(TAG.SEQUENCE));
    outer.end();
    const alg = readDer(spki.read(TAG.SEQUENCE));
    if (toHex(alg.read(TAG.OID)) !== OID_EC_PUBLIC_KEY) throw new KeyError('key algorithm is not id-ecPublicKey');
    if (alg.done()) throw new KeyError('key names no curve');
    if (alg.peekTag() !== TAG.OID) throw new KeyError('explicit EC curve parameters are not supported');
    const curve = alg.read(TAG.OID);
    alg.end();
    if (toHex(curve) !== OID_SM2) throw new KeyError('key curve is not SM2 (OID 1.2.156.10197.1.301)');
    point = spki.read(TAG.BIT_STRING);
    spki.end();
  } catch (e) {
    if (e instanceof KeyError) throw e;
    throw new KeyError(`malformed SubjectPublicKeyInfo: ${e.message}`);
  }
  if (!point.length || point[0] !== 0) throw new KeyError('public key BIT STRING has unused bits');
  const octets = toHex(point.subarray(1));
  const prefix = octets.slice(0, 2);
  const uncompressed = octets.length === 130 && prefix === '04';
  const compressed = octets.length === 66 && (prefix === '02' || prefix === '03');
  if (!uncompressed && !compressed) throw new KeyError('public key is not an uncompressed or compressed SEC1 point');
  const decoded = smUtils.getGlobalCurve().decodePointHex(octets);
  if (!decoded || decoded.isInfinity()) throw new KeyError('public key point is not on the SM2 curve');
  const x = BigInt('0x' + (compressed ? octets.slice(2) : octets.slice(2, 66)));
  const y = compressed ? BigInt('0x' + decoded.getY().toBigInteger().toString(16)) : BigInt('0x' + octets.slice(66));
  const hex = '04' + x.toString(16).padStart(64, '0') + y.toString(16).padStart(64, '0');
  if (x >= P || y >= P || !sm2.verifyPublicKey(hex)) throw new KeyError('public key point is not on the SM2 curve');
  return { hex, spki: fromHex(SPKI_PREFIX + hex) };
}

/** Strict DER SEQUENCE{r, s} with 1 <= r, s < n (provenance/crypto/_der.py decode_signature). */
function checkSignatureDer(sig) {
  let r;
  let s;
  try {
    const outer = readDer(sig);
    const inner = readDer(outer.read(TAG.SEQUENCE));
    outer.end();
    r = inner.uint();
    s = inner.uint();
    inner.end();
  } catch (e) {
    return `malformed DER signature: ${e.message}`;
  }
  if (r < 1n || r >= N) return 'signature r out of range [1, n-1]';
  if (s < 1n || s >= N) return 'signature s out of range [1, n-1]';
  return null;
}

/**
 * Verify an SM2 signature (DER) over `message` with Z from the default ID and SM3.
 * Returns null when it holds, else a reason.
 */
export function sm2Verify(message, signature, publicKey) {
  const malformed = checkSignatureDer(signature);
  if (malformed) return malformed;
  const ok = sm2.doVerifySignature(Array.from(message), toHex(signature), publicKey.hex, {
    der: true,
    hash: true,
    userId: DEFAULT_ID,
  });
  return ok ? null : 'SM2 signature does not match the message, key and ID';
}

/** An SM2 key from OrgRegistry's raw bytes (provenance/crypto/sm2.py from_raw: x‖y or 04‖x‖y), checked as a PEM is. */
export function keyFromRaw(raw) {
  const point = raw.length === 64 ? concat(Uint8Array.of(4), raw) : raw;
  if (point.length !== 65 || point[0] !== 4) throw new KeyError('raw SM2 public key must be 64 bytes x||y or 65 bytes 04||x||y');
  const der = fromHex(SPKI_PREFIX + toHex(point));
  return parsePublicKey(`-----BEGIN PUBLIC KEY-----\n${b64encode(der)}\n-----END PUBLIC KEY-----\n`);
}
