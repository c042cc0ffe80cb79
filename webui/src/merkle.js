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
