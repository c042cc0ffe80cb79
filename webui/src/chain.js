// The page's own chain lookups, what `provenance orgs export --rpc` and `provenance verify --rpc` read:
// the organisations and SM2 key windows of OrgRegistry (a trust store, as provenance/chain/registry.py
// read_trust builds it) and the anchor of a checkpoint in ProvenanceLog (provenance/chain/anchor.py
// ChainAnchorChecker, without the seal proof: the step is then a warning, as the CLI's is without pinned
// sealing keys). JSON-RPC from the browser (the node answers CORS); the few calls are hand-encoded (static
// arguments: uint64, bytes32) and their answers decoded here. A node that does not answer is "unreachable",
// which fails the anchor step: never verified.
import { keccak_256 } from '@noble/hashes/sha3.js';
import { b64decode, equalBytes, fromHex, toHex, utf8 } from './bytes.js';
import { ConsistencyError, verifyConsistency } from './merkle.js';
import { keyFromRaw, KeyError, sm3 } from './sm.js';

const TIMEOUT_MS = 10000;
const selector = (sig) => toHex(keccak_256(utf8(sig)).subarray(0, 4));
const SEL = {
  rootAt: selector('rootAt(uint64)'),
  registry: selector('registry()'),
  orgIds: selector('orgIds()'),
  getOrg: selector('getOrg(bytes32)'),
  keysOf: selector('keysOf(bytes32)'),
  anchorCount: selector('anchorCount()'),
  anchorAt: selector('anchorAt(uint256)'),
};
const ANCHORED = '0x' + toHex(keccak_256(utf8('Anchored(uint64,bytes32,address,uint256)')));
// contracts/EnvMonitoring.sol BatchAnchored(stationId indexed, batchIndex indexed, periodStart, periodEnd, merkleRoot, count)
const BATCH_ANCHORED = '0x' + toHex(keccak_256(utf8('BatchAnchored(bytes32,uint64,uint64,uint64,bytes32,uint32)')));
// contracts/IOrgRegistry.sol Role, as provenance/types.py Role.label names them.
const ROLES = ['none', 'hospital', 'pharmacy', 'data_owner', 'data_user', 'env_bureau', 'monitoring_station',
  'party_branch', 'auditor', 'regulator', 'log_operator', 'pharmacist', 'insurer'];

/** A chain lookup that did not hold: `reason` is an i18n key of step "anchor". */
export class ChainError extends Error {
  constructor(reason, message, params = {}) {
    super(message);
    this.reason = reason;
    this.params = params;
  }
}

const word = (n) => BigInt(n).toString(16).padStart(64, '0');

/** One JSON-RPC request; a node that cannot be reached (or answers no JSON-RPC) is "unreachable". */
export async function rpc(url, method, params) {
  let body;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    body = await res.json();
  } catch (e) {
    throw new ChainError('anchor.unreachable', `the chain node ${url} does not answer: ${e?.message ?? e}`, { url });
  }
  if (body?.error) {
    throw new ChainError('anchor.rpc_error', `the chain node refused ${method}: ${String(body.error.message ?? '').slice(0, 200)}`, { method });
  }
  if (!body || typeof body !== 'object' || !('result' in body)) {
    throw new ChainError('anchor.unreachable', `the chain node ${url} answers no JSON-RPC`, { url });
  }
  return body.result;
}

class Abi {
  constructor(hex) {
    if (typeof hex !== 'string' || !/^0x([0-9a-f]{2})*$/i.test(hex)) throw new ChainError('anchor.rpc_error', 'eth_call answered no hex data');
    this.b = fromHex(hex.slice(2));
  }
  uint(at) {
    if (at + 32 > this.b.length) throw new ChainError('anchor.rpc_error', 'eth_call answer is too short (no such contract?)');
    return BigInt('0x' + toHex(this.b.subarray(at, at + 32)));
  }
  num(at) {
    const v = this.uint(at);
    if (v > BigInt(this.b.length)) throw new ChainError('anchor.rpc_error', 'eth_call answer has an offset beyond its end');
    return Number(v);
  }
  bytes32(at) {
    this.uint(at);
    return this.b.slice(at, at + 32);
  }
  bytes(at) {
    const n = this.num(at);
    if (at + 32 + n > this.b.length) throw new ChainError('anchor.rpc_error', 'eth_call answer is too short');
    return this.b.slice(at + 32, at + 32 + n);
  }
}

async function call(url, to, sel, args = '') {
  return new Abi(await rpc(url, 'eth_call', [{ to, data: `0x${sel}${args}` }, 'latest']));
}

const address = (a) => `0x${toHex(a.bytes32(0).subarray(12))}`;
const same = (a, b) => typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
const chainTime = (s) => (s === 0n ? null : s * 1000000n); // unix seconds, 0 for none -> µs

/**
 * The trust store of the chain (trust.js parseTrust's shape) from what the gateway names (`info`: GET
 * /api/v1/chain: chain id, ProvenanceLog, OrgRegistry, kinds), each checked on the node: its chain id,
 * the log's registry. Log keys: every key of the log operators with its window (a rotated or revoked key
 * still vouches for checkpoints of records dated inside it: registry.py _log_keys), under the bundle's key name.
 */
export async function chainTrust(url, info) {
  const served = Number(BigInt(await rpc(url, 'eth_chainId', [])));
  if (served !== info.chain_id) {
    throw new ChainError('anchor.node_chain', `the node serves chain ${served}, the gateway's log is on chain ${info.chain_id}`, {
      chain_id: info.chain_id,
      served,
    });
  }
  const gate = address(await call(url, info.provenance_log, SEL.registry));
  if (!same(gate, info.org_registry)) {
    throw new ChainError('anchor.rpc_error', `ProvenanceLog ${info.provenance_log} answers to registry ${gate}, not ${info.org_registry}`);
  }
  const ids = await call(url, info.org_registry, SEL.orgIds);
  const base = ids.num(0);
  const count = ids.num(base);
  const orgs = new Map();
  const logKeys = [];
  for (let i = 0; i < count; i++) {
    const raw = ids.bytes32(base + 32 + 32 * i);
    const id = new TextDecoder().decode(raw.subarray(0, raw.indexOf(0) < 0 ? 32 : raw.indexOf(0)));
    const org = await call(url, info.org_registry, SEL.getOrg, toHex(raw));
    const role = ROLES[Number(org.uint(org.num(0)))] ?? 'none';
    const ks = await call(url, info.org_registry, SEL.keysOf, toHex(raw));
    const arr = ks.num(0);
    const keys = [];
    for (let j = 0; j < ks.num(arr); j++) {
      const at = arr + 32 + ks.num(arr + 32 + 32 * j);
      let key;
      try {
        key = keyFromRaw(ks.bytes(at + ks.num(at)));
      } catch (e) {
        if (e instanceof KeyError) continue; // registry_org: a key that is not an SM2 point signs nothing
        throw e;
      }
      const k = { hex: key.hex, key, validFrom: chainTime(ks.uint(at + 32)), validUntil: chainTime(ks.uint(at + 64)), revokedAt: chainTime(ks.uint(at + 96)) };
      keys.push(k);
      if (role === 'log_operator') logKeys.push(k);
    }
    orgs.set(id, { id, role, name: '', keys });
  }
  return {
    source: 'chain',
    orgs,
    logKeys,
    logs: [],
    chainId: info.chain_id,
    provenanceLog: info.provenance_log,
    witnesses: null,
    kinds: new Map(Object.entries(info.kinds ?? {})),
  };
}

/** The trust store for one bundle: the log operators' keys under the name the bundle's log key gives. */
export function forBundle(store, bundle) {
  const name = bundle?.log?.log_key?.name;
  return { ...store, logs: typeof name === 'string' ? store.logKeys.map((k) => ({ name, key: k.key, origin: null, validUntil: k.validUntil, revokedAt: k.revokedAt })) : [] };
}

/**
 * provenance/chain/anchor.py ChainAnchorChecker._check: ProvenanceLog at the anchor's contract holds the
 * checkpoint's root for its size, the anchor's transaction is in the block the bundle says and emitted
 * that Anchored event, and the anchors just before and after extend it (consistency proofs from
 * `proofFor(first, second)`, the gateway's). Returns a warning reason (nothing proves the node's blocks
 * are the chain's); throws ChainError.
 */
export async function checkAnchor(url, anchor, checkpoint, proofFor) {
  const served = Number(BigInt(await rpc(url, 'eth_chainId', [])));
  if (anchor.chain_id !== served) {
    throw new ChainError('anchor.node_chain', `anchor is on chain ${anchor.chain_id}, the node serves chain ${served}`, {
      chain_id: anchor.chain_id,
      served,
    });
  }
  const size = checkpoint.size;
  const to = anchor.contract;
  const root = (await call(url, to, SEL.rootAt, word(size))).bytes32(0);
  if (root.every((x) => x === 0)) {
    throw new ChainError('anchor.not_anchored', `tree size ${size} is not anchored in ProvenanceLog ${to}`, { size: String(size) });
  }
  if (!equalBytes(root, checkpoint.root)) {
    throw new ChainError('anchor.other_root', `ProvenanceLog holds a different root for tree size ${size}`, { size: String(size) });
  }
  const receipt = await rpc(url, 'eth_getTransactionReceipt', [anchor.tx_hash]);
  if (!receipt) throw new ChainError('anchor.no_transaction', `anchor transaction ${anchor.tx_hash} is not on chain`, { tx: anchor.tx_hash });
  if (Number(BigInt(receipt.blockNumber)) !== anchor.block_number || !same(receipt.blockHash, anchor.block_hash)) {
    throw new ChainError('anchor.other_block', 'anchor transaction is in another block than the bundle says', { block: String(BigInt(receipt.blockNumber)) });
  }
  // Only the contract's own logs: any contract can emit an event of the same shape.
  const held = (receipt.logs ?? []).some(
    (lg) =>
      same(lg.address, to) &&
      same(lg.topics?.[0], ANCHORED) &&
      same(lg.topics?.[1], `0x${word(size)}`) &&
      typeof lg.data === 'string' &&
      same(lg.data.slice(0, 66), `0x${toHex(root)}`),
  );
  if (!held) throw new ChainError('anchor.not_in_transaction', `transaction ${anchor.tx_hash} did not anchor tree size ${size}`, { size: String(size) });
  await checkHistory(url, to, size, root, proofFor);
  return 'anchor.unsealed';
}

/**
 * provenance/chain/anchor.py ChainAnchorChecker.check_batch, for an env.batch reading: the batch anchor's
 * transaction succeeded in the block the bundle says and holds, from the contract it names, the
 * BatchAnchored event of the signed head (root, station, period, count). Returns a warning reason (nothing
 * proves the node's blocks); throws ChainError with a reason of step "batch_anchor".
 */
export async function checkBatchAnchor(url, a, batch, subject) {
  const served = Number(BigInt(await rpc(url, 'eth_chainId', [])));
  if (a.chain_id !== served) {
    throw new ChainError('batch_anchor.node_chain', `batch anchor is on chain ${a.chain_id}, the node serves ${served}`, { chain_id: a.chain_id, served });
  }
  const receipt = await rpc(url, 'eth_getTransactionReceipt', [a.tx_hash]);
  if (!receipt) throw new ChainError('batch_anchor.no_transaction', `batch anchor transaction ${a.tx_hash} is not on chain`, { tx: a.tx_hash });
  if (BigInt(receipt.status ?? 0) !== 1n || Number(BigInt(receipt.blockNumber)) !== a.block_number || !same(receipt.blockHash, a.block_hash)) {
    throw new ChainError('batch_anchor.other_block', 'batch anchor transaction failed or is in another block than the bundle says', {
      block: String(BigInt(receipt.blockNumber)),
    });
  }
  const unix = (instant) => word(Date.parse(instant) / 1000);
  // The event's data: periodStart, periodEnd, merkleRoot, count, a word each.
  const data = `0x${unix(batch.period_start)}${unix(batch.period_end)}${batch.root}${word(batch.count)}`;
  const held = (receipt.logs ?? []).some(
    (lg) =>
      same(lg.address, a.contract) &&
      same(lg.topics?.[0], BATCH_ANCHORED) &&
      same(lg.topics?.[1], `0x${toHex(sm3(utf8(subject)))}`) &&
      same(lg.data, data),
  );
  if (!held) {
    throw new ChainError('batch_anchor.not_in_transaction', `transaction ${a.tx_hash} holds no BatchAnchored of this batch`, { tx: a.tx_hash });
  }
  return 'batch_anchor.unsealed';
}

async function checkHistory(url, to, size, root, proofFor) {
  const anchors = new Map();
  const at = async (i) => {
    if (!anchors.has(i)) {
      const a = await call(url, to, SEL.anchorAt, word(i));
      anchors.set(i, { size: a.uint(0), root: a.bytes32(32) });
    }
    return anchors.get(i);
  };
  const count = Number((await call(url, to, SEL.anchorCount)).uint(0));
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await at(mid)).size < size) lo = mid + 1;
    else hi = mid;
  }
  const mine = lo < count ? await at(lo) : null;
  if (!mine || mine.size !== size || !equalBytes(mine.root, root)) {
    throw new ChainError('anchor.not_anchored', `tree size ${size} is not among the anchors of ${to}`, { size: String(size) });
  }
  const links = [];
  if (lo > 0) links.push([await at(lo - 1), mine]);
  if (lo + 1 < count) links.push([mine, await at(lo + 1)]);
  for (const [a, b] of links) {
    const proof = await proofFor(a.size, b.size);
    try {
      verifyConsistency(a.size, b.size, a.root, b.root, proof);
    } catch (e) {
      if (!(e instanceof ConsistencyError)) throw e;
      throw new ChainError('anchor.history', `the anchored checkpoints of sizes ${a.size} and ${b.size} are not shown to be one history: ${e.message}`, {
        first: String(a.size),
        second: String(b.size),
      });
    }
  }
}

/** A consistency proof (base64 hashes) as the gateway serves it, as bytes; null hashes fail the proof. */
export const proofHashes = (doc) => (Array.isArray(doc?.proof) ? doc.proof.map((p) => (typeof p === 'string' ? b64decode(p) : null) ?? new Uint8Array()) : []);
