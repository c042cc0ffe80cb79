// RFC 9162 inclusion proofs over SM3, a line-by-line port of provenance/log/merkle.py
// (root_from_inclusion_proof). BigInt throughout: tree sizes may exceed 2^32, where JS bit operators wrap.
import { concat, equalBytes, toHex } from './bytes.js';
import { sm3 } from './sm.js';

const HASH_SIZE = 32;

export const leafHash = (entry) => sm3(concat(Uint8Array.of(0), entry));
export const nodeHash = (left, right) => sm3(concat(Uint8Array.of(1), left, right));

const bitLength = (n) => (n === 0n ? 0 : n.toString(2).length);
const bitCount = (n) => [...n.toString(2)].filter((c) => c === '1').length;

export class ProofError extends Error {}

function rootFromInclusionProof(leaf, index, treeSize, proof) {
  if (index < 0n || treeSize < 0n || index >= treeSize) {
    throw new ProofError(`leaf index ${index} is not below tree size ${treeSize}`);
  }
  const inner = bitLength(index ^ (treeSize - 1n));
  const border = bitCount(index >> BigInt(inner));
  if (proof.length !== inner + border) {
    throw new ProofError(
      `inclusion proof has ${proof.length} hashes, expected ${inner + border} for leaf ${index} of tree size ${treeSize}`,
    );
  }
  if (leaf.length !== HASH_SIZE) throw new ProofError(`leaf hash is ${leaf.length} bytes, expected ${HASH_SIZE}`);
  proof.forEach((p, i) => {
    if (p.length !== HASH_SIZE) throw new ProofError(`inclusion proof hash ${i} is ${p.length} bytes, expected ${HASH_SIZE}`);
  });
  let fn = index;
  let sn = treeSize - 1n;
  let r = leaf;
  for (const p of proof) {
    if (fn & 1n || fn === sn) {
      r = nodeHash(p, r);
      // On the right edge a node may have no sibling at some levels: skip those levels.
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError('inclusion proof is too short for the tree size');
  return r;
}

/** Throws ProofError unless `leaf` is at `index` in the tree of `treeSize` with `root`. */
export function verifyInclusion(leaf, index, treeSize, proof, root) {
  if (root.length !== HASH_SIZE) throw new ProofError(`root is ${root.length} bytes, expected ${HASH_SIZE}`);
  const computed = rootFromInclusionProof(leaf, BigInt(index), BigInt(treeSize), proof);
  if (!equalBytes(computed, root)) {
    const e = new ProofError(`inclusion proof for leaf ${index} does not lead to the root of tree size ${treeSize}`);
    e.computedRoot = toHex(computed);
    throw e;
  }
}

export class ConsistencyError extends Error {}

/** Hashes of a consistency proof from size1 to size2 (0 < size1 < size2): provenance/log/merkle.py consistency_proof_length. */
function consistencyLength(size1, size2) {
  const shift = BigInt(bitLength(size1 & -size1) - 1);
  const index = size1 - 1n;
  const inner = bitLength(index ^ (size2 - 1n));
  const border = bitCount(index >> BigInt(inner));
  return (size1 === 1n << shift ? 0 : 1) + inner - Number(shift) + border;
}

/** Throws ConsistencyError unless tree (size2, root2) extends (size1, root1): a port of merkle.py verify_consistency (RFC 9162 §2.1.4.2). */
export function verifyConsistency(size1, size2, root1, root2, proof) {
  size1 = BigInt(size1);
  size2 = BigInt(size2);
  if (size1 < 0n || size2 < 0n) throw new ConsistencyError(`tree sizes must not be negative (${size1}, ${size2})`);
  if (size1 > size2) throw new ConsistencyError(`first tree size ${size1} exceeds second tree size ${size2}`);
  for (const [i, c] of [root1, root2, ...proof].entries()) {
    if (!(c instanceof Uint8Array) || c.length !== HASH_SIZE) throw new ConsistencyError(`hash ${i} of the proof input is not ${HASH_SIZE} bytes`);
  }
  if (size1 === size2 || size1 === 0n) {
    if (proof.length) throw new ConsistencyError(`consistency proof from size ${size1} to ${size2} must be empty, got ${proof.length} hashes`);
    if (size1 === size2 && !equalBytes(root1, root2)) throw new ConsistencyError(`roots differ for the same tree size ${size1}`);
    if (size1 === 0n && !equalBytes(root1, sm3(new Uint8Array()))) throw new ConsistencyError('first root is not the empty-tree root for size 0');
    return;
  }
  const expected = consistencyLength(size1, size2);
  if (proof.length !== expected) throw new ConsistencyError(`consistency proof has ${proof.length} hashes, expected ${expected} from size ${size1} to ${size2}`);
  const path = [...proof];
  if ((size1 & (size1 - 1n)) === 0n) path.unshift(root1);
  let fn = size1 - 1n;
  let sn = size2 - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (fn & 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ConsistencyError('consistency proof is too short for the tree sizes');
  if (!equalBytes(fr, root1)) throw new ConsistencyError(`consistency proof does not lead to the first root (size ${size1})`);
  if (!equalBytes(sr, root2)) throw new ConsistencyError(`consistency proof does not lead to the second root (size ${size2})`);
}
