// The regulators' /verify page: input (file, paste, lookup), rendering, language switch, rx timeline.
// Everything from a bundle or the gateway is untrusted text: it reaches the DOM only as textContent.
import bundleSchema from '../../provenance/schemas/evidence-bundle.schema.json';
import en from './i18n/en.json';
import zh from './i18n/zh.json';
import { parseJson } from './jcs.js';
import { settleAnchor, verifyBundle as verifyWith } from './verify.js';
import { ChainError, chainTrust, checkAnchor, checkBatchAnchor, forBundle, proofHashes } from './chain.js';
import { parseTrust, TrustError } from './trust.js';
import { datasetView, parseLineage } from './dataset.js';
import { toHex, utf8 } from './bytes.js';
import { applyStaticText, h, initialLang, text, TOKEN_KEY, translate, wireLanguageSwitch } from './ui.js';
import { codeView, timelineView } from './rx.js';

const MESSAGES = { zh, en };
const API = document.documentElement.dataset.apiBase || '/api/v1';
const RECORD_ID = /^[0-9a-f]{64}$/;
const SUBJECT = /^[a-z][a-z0-9_]*:\S{1,200}$/;
const MAX_HISTORY_PAGES = 50;

const state = { lang: initialLang(MESSAGES), view: null, busy: null, trust: null, chain: { url: '', info: null, store: null, error: null, loading: null } };

/**
 * Verify with the pinned keys of the loaded trust file, if any (callers first refuse a broken one), else
 * with a chain node the keys OrgRegistry holds; with a chain node the anchor is then looked up (settle).
 */
function verifyBundle(text, listed = null) {
  const c = state.chain;
  const trust = state.trust?.store ?? (c.url && c.store ? (data) => forBundle(c.store, data) : null);
  return settle(verifyWith(text, { trust, listed, online: Boolean(c.url) }));
}

/** Look pending anchors up on the chain node (`provenance verify --rpc`), then render the verdict. */
function settle(result) {
  settleBatchAnchor(result);
  const step = result.steps.find((s) => s.step === 'anchor');
  if (step?.status !== 'pending') return result;
  const c = state.chain;
  const failed = (e) => ({ failure: { reason: e.reason, params: e.params, detail: e.message } });
  const lookup = c.error
    ? Promise.resolve(failed(c.error))
    : checkAnchor(c.url, result.bundle.anchor, result.checkpoint, async (first, second) =>
        proofHashes(parseJson(await api(`/proofs/consistency?first=${first}&second=${second}`))),
      ).then(
        (warning) => ({ warning }),
        (e) => {
          if (e instanceof ChainError) return failed(e);
          const message = e instanceof ApiError ? `cannot get a consistency proof: ${text(e.params?.message ?? e.key)}` : text(e?.message ?? e);
          return { failure: { reason: 'anchor.lookup_failed', params: {}, detail: message } };
        },
      );
  lookup.then((outcome) => {
    settleAnchor(result, outcome);
    render();
  });
  return result;
}


/** A reading's batch anchor, pending: the BatchAnchored event looked up on the node (chain.js). */
function settleBatchAnchor(result) {
  const step = result.steps.find((s) => s.step === 'batch_anchor');
  if (step?.status !== 'pending') return;
  const c = state.chain;
  const b = result.bundle;
  const failed = (e) => ({ failure: { reason: e.reason ?? 'batch_anchor.lookup_failed', params: e.params ?? {}, detail: e.message ?? String(e) } });
  const lookup = c.error ? Promise.resolve(failed(c.error)) : checkBatchAnchor(c.url, b.batch_anchor, b.payload, b.record.subject).then((warning) => ({ warning }), failed);
  lookup.then((outcome) => {
    settleAnchor(result, outcome, 'batch_anchor');
    render();
  });
}

function t(key, params = {}) {
  return translate(MESSAGES, state.lang, key, params);
}

const $ = (id) => document.getElementById(id);

// --- rendering ---------------------------------------------------------------------------------------

const ICON = { passed: '✓', failed: '✗', skipped: '–', warning: '!', pending: '…' };
const VERDICT_ICON = { verified: '✓ ', consistent: '! ', failed: '✗ ', pending: '… ' };

/** The steps that ran as one attribute, "digest:passed,payload:skipped,…" (tests compare it with the CLI's). */
const stepsAttr = (result) =>
  result.steps
    .filter((s) => s.reason !== 'not_checked')
    .map((s) => `${s.step}:${s.status}`)
    .join(',');

function stepItem(s) {
  const reasonKey = s.status === 'passed' && !s.reason ? 'reason.passed' : `reason.${s.reason}`;
  return h(
    'li',
    { class: `step ${s.status}`, 'data-step': s.step, 'data-status': s.status },
    h('span', { class: 'icon', 'aria-hidden': 'true' }, ICON[s.status]),
    h(
      'div',
      { class: 'step-body' },
      h('span', { class: 'step-title' }, t(`step.${s.step}`)),
      ' ',
      h('span', { class: 'badge' }, t(`status.${s.status}`)),
      h('p', { class: 'reason' }, t(reasonKey, s.params)),
      s.note ? h('p', { class: 'note' }, t(`note.${s.note}`, s.params)) : null,
      s.detail
        ? h('details', {}, h('summary', {}, t('detail.technical')), h('code', { class: 'detail' }, s.detail))
        : null,
    ),
  );
}

function dl(rows) {
  return h(
    'dl',
    {},
    rows.filter(Boolean).map(([k, v, mono]) => [h('dt', {}, t(k)), h('dd', mono ? { class: 'mono' } : {}, v)]),
  );
}

function bundleView(result, source) {
  const b = result.bundle && typeof result.bundle === 'object' ? result.bundle : {};
  const rec = b.record && typeof b.record === 'object' ? b.record : null;
  const verdict = result.ok
    ? t(`verdict.${result.verdict}`)
    : t('verdict.failed', { step: t(`step.${result.failedStep}`) });
  const parts = [
    h(
      'h2',
      { class: `verdict ${result.verdict}`, 'data-verdict': result.verdict, 'data-steps': stepsAttr(result), tabindex: '-1' },
      h('span', { 'aria-hidden': 'true' }, VERDICT_ICON[result.verdict]),
      verdict,
    ),
    source ? h('p', { class: 'source' }, t('verdict.source', { source })) : null,
    h('h3', {}, t('steps.heading')),
    h('ol', { class: 'steps' }, result.steps.map(stepItem)),
  ];
  if (rec) {
    parts.push(
      h('h3', {}, t('record.heading')),
      dl([
        ['record.kind', `${text(rec.kind)}${Object.hasOwn(MESSAGES[state.lang], `kind.${text(rec.kind)}`) ? ` (${t(`kind.${text(rec.kind)}`)})` : ''}`],
        ['record.subject', rec.subject, true],
        ['record.org', rec.org, true],
        ['record.timestamp', rec.timestamp, true],
        ['record.digest', b.digest, true],
        ['record.prev', rec.prev ?? t('record.none'), true],
      ]),
    );
  }
  const cp = result.checkpoint;
  if (cp) {
    parts.push(
      h('h3', {}, t('checkpoint.heading')),
      dl([
        ['checkpoint.origin', cp.origin, true],
        ['checkpoint.size', String(cp.size), true],
        ['checkpoint.root', toHex(cp.root), true],
        ['checkpoint.leaf', text(b.log?.leaf_index), true],
      ]),
    );
  }
  const a = b.anchor;
  parts.push(h('h3', {}, t('anchor.heading')));
  if (a && typeof a === 'object') {
    parts.push(
      dl([
        ['anchor.chain_id', text(a.chain_id), true],
        ['anchor.contract', a.contract, true],
        ['anchor.block', text(a.block_number), true],
        ['anchor.block_hash', a.block_hash, true],
        ['anchor.tx', a.tx_hash, true],
        ['anchor.tree', `${text(a.tree_size)} / ${text(a.root)}`, true],
      ]),
    );
  } else {
    parts.push(h('p', {}, t('anchor.none')));
  }
  return h('div', { class: 'bundle-result' }, parts);
}

function listView(view) {
  const { subject, entries } = view;
  const isExport = view.type === 'export';
  const done = entries.filter((e) => e.result);
  const ok = done.filter((e) => e.result.verdict === 'verified').length;
  const consistent = done.filter((e) => e.result.verdict === 'consistent').length;
  const rows = entries.map((e, i) => {
    const id = e.item.id;
    let cell;
    if (e.error) cell = h('span', { class: 'badge failed' }, t(e.error.key, e.error.params));
    else if (!e.result) cell = h('span', { class: 'badge' }, t('status.working'));
    else {
      const v = e.result.verdict;
      cell = [
        h('span', { class: `badge ${v}` }, VERDICT_ICON[v], v === 'failed' ? t('verdict.failed', { step: t(`step.${e.result.failedStep}`) }) : t(`row.${v}`)),
        ' ',
        h('button', { type: 'button', class: 'link', 'aria-expanded': String(view.open === i), 'aria-controls': 'subject-detail', onclick: () => toggleDetail(i) }, t('subject.show')),
      ];
    }
    return h(
      'tr',
      {
        'data-row': i,
        'data-record': id,
        'data-failed-step': e.result ? (e.result.failedStep ?? '') : null,
        'data-failed-reason': e.result?.steps.find((st) => st.status === 'failed')?.reason ?? null,
        'data-verdict': e.result?.verdict ?? null,
        'data-steps': e.result ? stepsAttr(e.result) : null,
      },
      h('td', { class: 'mono' }, e.item.timestamp),
      h('td', {}, e.item.kind),
      h('td', { class: 'mono' }, e.item.org),
      h('td', { class: 'mono', title: id }, `${text(id).slice(0, 16)}…`),
      h('td', {}, cell),
    );
  });
  const open = view.open !== null && entries[view.open]?.result;
  return h(
    'div',
    { class: isExport ? 'subject-result export-result' : 'subject-result', 'data-subject': subject },
    h('h2', { tabindex: '-1' }, isExport ? t('export.heading', { name: view.name }) : t('subject.heading', { subject })),
    entries.length ? h('p', { class: 'summary' }, t('subject.summary', { ok, consistent, total: entries.length })) : h('p', {}, t('subject.empty')),
    view.truncated
      ? h('p', { class: 'warning', role: 'alert', 'data-warning': 'subject.truncated' }, t('subject.truncated', { pages: MAX_HISTORY_PAGES, shown: entries.length }))
      : null,
    !isExport && subject.startsWith('rx:') ? timelineView(entries, t, VERDICT_ICON) : null,
    !isExport && subject.startsWith('dataset:') ? datasetView(view, { h, t, lookup: (q) => {
          $('q').value = q;
          return lookup(q);
        }, icons: VERDICT_ICON }) : null,
    entries.length
      ? h(
          'table',
          {},
          h('thead', {}, h('tr', {}, ['time', 'kind', 'org', 'id', 'result'].map((c) => h('th', { scope: 'col' }, t(`subject.col.${c}`))))),
          h('tbody', {}, rows),
        )
      : null,
    h('div', { id: 'subject-detail' }, open ? bundleView(entries[view.open].result, entries[view.open].item.id) : null),
  );
}

function render() {
  const out = $('results');
  out.setAttribute('aria-busy', String(Boolean(state.busy)));
  const v = state.view;
  let content;
  if (state.busy) content = h('p', { class: 'busy' }, t(state.busy));
  else if (!v) content = null;
  // A trust file that did not load is an error, as in `provenance verify --trust`: no verdict is shown.
  else if (state.trust?.error && v.type !== 'error') {
    content = h('p', { class: 'error', role: 'alert', 'data-error': 'error.trust' }, t('error.trust', { name: state.trust.name, message: state.trust.error }));
  } else if (v.type === 'bundle') content = bundleView(v.result, v.source);
  else if (v.type === 'subject' || v.type === 'export') content = listView(v);
  else if (v.type === 'code') content = codeView(v, t, VERDICT_ICON, bundleView);
  else if (v.type === 'error') content = h('p', { class: 'error', role: 'alert', 'data-error': v.key }, t(v.key, v.params));
  // Re-rendering replaces nodes: keep keyboard focus on the equivalent element (heading or row button).
  const active = document.activeElement;
  const refocus = out.contains(active)
    ? active.closest('tr[data-row]')
      ? `tr[data-row="${active.closest('tr[data-row]').dataset.row}"] button`
      : active.tagName === 'H2'
        ? `${active.closest('#subject-detail') ? '#subject-detail ' : ''}h2`
        : null
    : null;
  out.replaceChildren(...(content ? [content] : []));
  if (refocus) out.querySelector(refocus)?.focus({ preventScroll: true });
}

function toggleDetail(i) {
  state.view.open = state.view.open === i ? null : i;
  render();
  if (state.view.open !== null) $('subject-detail').querySelector('h2')?.focus();
}

function show(view) {
  state.busy = null;
  state.view = view;
  render();
  // Move focus to the new heading so keyboard and screen-reader users land on the result.
  $('results').querySelector('h2')?.focus({ preventScroll: false });
}

// --- inputs ------------------------------------------------------------------------------------------

// JSON's whitespace (RFC 8259), what a blank line of an export may hold (batch.py JSON_SPACE): a line of a
// vertical tab or form feed is a line, which fails as it does alone.
const JSON_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);
const isBlank = (bytes) => bytes.every((c) => JSON_SPACE.has(c));
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 text of bytes, or null when they are not UTF-8 (a BOM is kept, for the parser to refuse). */
function decode(bytes) {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/** Verify one bundle's bytes as `provenance verify` reads a file or an export line. */
function verifyLine(bytes) {
  const text = decode(bytes);
  return verifyBundle(text ?? '\ufffd'); // not UTF-8: a schema failure, as Python's decode error
}

/** Whether a line is a JSON value by itself, read leniently (batch.py _a_json_value): UTF-8, then JSON.parse. */
function isJsonValue(bytes) {
  const text = decode(bytes);
  if (text === null) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

// One character a byte, ASCII as itself: the bytes of a line searched as text, whatever their encoding.
const BYTEWISE = new TextDecoder('latin1');

// The members every bundle has (the schema's required ones): an export's line names each of them.
const BUNDLE_MEMBERS = bundleSchema.required.map((m) => `"${m}"`);

/**
 * Whether a line opens an object and names every member a bundle has, its escapes of ASCII characters read
 * (batch.py starts_a_bundle, on the bytes, valid UTF-8 or not): an export's line, never a line of a document
 * printed over lines, nor an object a formatter kept on one line. Whitespace is JSON's (not trimStart's).
 */
function isBundleStart(bytes) {
  let text = BYTEWISE.decode(bytes);
  if (!/^[ \t\r\n]*\{/.test(text)) return false;
  if (text.includes('\\u')) {
    text = text.replace(/\\u00([0-7][0-9A-Fa-f])/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
  }
  return BUNDLE_MEMBERS.every((name) => text.includes(name));
}

/**
 * The lines of an export (JSON Lines) as [number, bytes], or null for a single document: the rule of
 * provenance/verification/batch.py is_json_lines (two non-blank lines or more, the first or the second a
 * JSON value by itself, read leniently, or a later one the start of a bundle: isBundleStart). One bad first
 * line (a key twice, a BOM, a cut-off bundle) is one failed line of the export, not a reason to read the
 * whole file as one bundle; nor are two that open a signed payload holding whole bundles on lines of their
 * own (the eighth and ninth attacks).
 */
function exportLines(bytes) {
  const lines = [];
  let start = 0;
  let n = 1;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      const line = bytes.subarray(start, i);
      if (!isBlank(line)) lines.push([n, line]);
      start = i + 1;
      n++;
    }
  }
  if (lines.length < 2) return null;
  // A document printed over several lines has neither line a value: its first opens it, its second is a member;
  // and no line of it starts an object with its members.
  if (isJsonValue(lines[0][1]) || isJsonValue(lines[1][1])) return lines;
  return lines.slice(2).some(([, line]) => isBundleStart(line)) ? lines : null;
}

function verifyBytes(bytes, source) {
  const lines = exportLines(bytes);
  if (!lines) {
    const redo = () => verifyLine(bytes);
    return show({ type: 'bundle', redo, result: redo(), source });
  }
  const entries = lines.map(([n, line]) => {
    const redo = () => verifyLine(line);
    const result = redo();
    const rec = result.bundle?.record ?? {};
    const id = typeof result.bundle?.digest === 'string' ? result.bundle.digest : `#${n}`;
    return { item: { id, kind: rec.kind, org: rec.org, timestamp: rec.timestamp }, redo, result, error: null };
  });
  show({ type: 'export', name: source ?? '', subject: '', open: null, entries });
}

async function verifyText(text, source) {
  if (!text.trim()) return show({ type: 'error', key: 'error.empty' });
  await state.chain.loading;
  verifyBytes(utf8(text), source);
}

async function readFile(file) {
  await state.chain.loading;
  let bytes;
  try {
    bytes = new Uint8Array(await file.arrayBuffer());
  } catch {
    return show({ type: 'error', key: 'error.file' });
  }
  verifyBytes(bytes, file.name);
}

class ApiError extends Error {
  constructor(key, params) {
    super(key);
    this.key = key;
    this.params = params;
  }
}

function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return $('token').value.trim();
  }
}

async function api(path) {
  let res;
  const headers = { Accept: 'application/json' };
  const tok = token();
  if (tok) headers.Authorization = `Bearer ${tok}`;
  try {
    res = await fetch(`${API}${path}`, { headers });
  } catch (e) {
    throw new ApiError('error.network', { message: e.message });
  }
  const text = await res.text();
  if (!res.ok) {
    let message = res.statusText;
    try {
      const err = JSON.parse(text).error;
      message = err.code ? `${err.message} [${err.code}]` : err.message;
    } catch {
      // Not the gateway's error body: keep the status text.
    }
    const key = { 401: 'error.auth', 403: 'error.forbidden', 404: 'error.not_found' }[res.status] ?? 'error.http';
    throw new ApiError(key, { status: res.status, message });
  }
  return text;
}

function historyItems(doc) {
  const items = Array.isArray(doc) ? doc : (doc?.items ?? []);
  // The listing is the gateway's word: whatever it holds, a row's id is text (checked before any fetch).
  return (Array.isArray(items) ? items : []).map((it) => ({ ...(it && typeof it === 'object' ? it : {}), id: text(it?.id) }));
}

/**
 * Every listed record of a subject, page by page, as provenance/listing.py HistoryPages reads them: the
 * cursor must be an integer that advances, a page that says "more" must hold records, and after
 * MAX_HISTORY_PAGES pages the rest is left out (truncated: shown as a warning, never as the whole history).
 */
async function historyOf(subject) {
  const items = [];
  let after = 0;
  for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
    const suffix = page ? `?after=${encodeURIComponent(after)}` : '';
    let doc;
    try {
      doc = parseJson(await api(`/subjects/${encodeURIComponent(subject)}/records${suffix}`));
    } catch (e) {
      if (e instanceof ApiError) throw e;
      throw new ApiError('error.listing', { message: `the answer is not valid JSON: ${text(e?.message ?? e)}` });
    }
    const pageItems = historyItems(doc);
    items.push(...pageItems);
    const cursor = Array.isArray(doc) ? null : (doc?.next_cursor ?? null);
    if (cursor === null) return { items, truncated: false };
    if (!Number.isSafeInteger(cursor) || cursor <= after) {
      throw new ApiError('error.listing', { message: `next_cursor ${text(cursor).slice(0, 40)} does not advance past ${after}` });
    }
    if (!pageItems.length) {
      throw new ApiError('error.listing', { message: `an empty page says more records follow (next_cursor ${cursor})` });
    }
    after = cursor;
  }
  return { items, truncated: true };
}

async function lookup(query) {
  const q = query.trim();
  if (!RECORD_ID.test(q) && !SUBJECT.test(q)) return show({ type: 'error', key: 'error.lookup_format' });
  const url = new URL(location.href);
  url.searchParams.set('q', q);
  history.replaceState(null, '', url);
  state.busy = 'status.loading';
  render();
  await state.chain.loading;
  try {
    if (q.startsWith('code:')) return await lookupCode(q.slice('code:'.length));
    if (RECORD_ID.test(q)) {
      const text = await api(`/records/${q}/bundle`);
      // The gateway must answer with the record asked for: checked like a history row (step "listing").
      const redo = () => verifyBundle(text, { item: { id: q } });
      return show({ type: 'bundle', redo, result: redo(), source: q });
    }
    const { items, truncated } = await historyOf(q);
    // A record listed twice is one record: its second row fails step "listing" (provenance trace's rule).
    const seen = new Set();
    const entries = items.map((item) => {
      const duplicate = seen.has(item.id);
      seen.add(item.id);
      return { item, duplicate, result: null, error: null };
    });
    const view = { type: 'subject', subject: q, open: null, truncated, entries };
    if (q.startsWith('dataset:')) lineageOf(view);
    show(view);
    await verifyAll(view);
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    show({ type: 'error', key: e.key, params: e.params });
  }
}

/**
 * A box by its drug traceability code (any form the gateway accepts; it answers with the normal form):
 * where and when it was dispensed, and that dispense record checked against its own bundle (the record
 * the answer names, signed by the pharmacy named, of the prescription named).
 */
async function lookupCode(code) {
  const answer = parseJson(await api(`/rx/codes?code=${encodeURIComponent(code)}`));
  const view = { type: 'code', asked: code, answer, result: null, redo: null, error: null };
  const use = answer?.dispense;
  if (use && RECORD_ID.test(text(use.record))) {
    try {
      const bundle = await api(`/records/${use.record}/bundle`);
      const item = { id: use.record, kind: 'rx.dispense', ...(use.pharmacy ? { org: text(use.pharmacy) } : {}) };
      view.redo = () => verifyBundle(bundle, { item, subject: use.rx_id ? `rx:${text(use.rx_id)}` : null });
      view.result = view.redo();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      view.error = { key: e.key, params: e.params };
    }
  }
  show(view);
}

/** A dataset's upstream and downstream datasets (the gateway's lineage read); null when it has none here. */
async function lineageOf(view) {
  const dataset = view.subject.slice('dataset:'.length);
  try {
    view.lineage = parseLineage(parseJson(await api(`/datasets/${encodeURIComponent(dataset)}/lineage`)), dataset);
  } catch {
    view.lineage = null; // no lineage here (DATASET_UNKNOWN) or none this reader sees: its records still show
  }
  if (state.view === view) render();
}

async function verifyAll(view) {
  let next = 0;
  const worker = async () => {
    while (next < view.entries.length) {
      const entry = view.entries[next++];
      if (!RECORD_ID.test(entry.item.id)) {
        entry.error = { key: 'error.bad_listing', params: { id: entry.item.id.slice(0, 80) } };
        continue;
      }
      try {
        const text = await api(`/records/${encodeURIComponent(entry.item.id)}/bundle`);
        // Each row is checked against its own bundle: the listed id, kind, org, subject and time.
        entry.redo = () => verifyBundle(text, { item: entry.item, subject: view.subject, duplicate: entry.duplicate });
        entry.result = entry.redo();
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        entry.error = { key: e.key, params: e.params };
      }
      if (state.view === view) render();
    }
  };
  // Screen readers wait for the whole history instead of reading each row as it lands.
  $('results').setAttribute('aria-busy', 'true');
  await Promise.all([worker(), worker(), worker(), worker()]);
  $('results').setAttribute('aria-busy', 'false');
}

function renderTrust() {
  const status = $('trust-status');
  const tr = state.trust;
  status.textContent = tr?.error
    ? t('trust.error', { message: tr.error })
    : tr
      ? t('trust.loaded', { name: tr.name, orgs: tr.store.orgs.size, logs: tr.store.logs.length })
      : t('trust.none');
  status.className = tr?.error ? 'trust-status error-text' : 'trust-status';
  $('trust-clear').hidden = !tr;
}

/** Verify what is on screen again, e.g. after a trust file was loaded or removed. */
function reverify() {
  const v = state.view;
  if (v?.type === 'bundle' || (v?.type === 'code' && v.redo)) v.result = v.redo();
  for (const e of v?.entries ?? []) if (e.redo) e.result = e.redo();
  render();
}

function renderChain() {
  const c = state.chain;
  const status = $('rpc-status');
  status.textContent = !c.url
    ? t('chain.none')
    : c.loading
      ? t('chain.loading')
      : c.error
        ? t('chain.error', { message: c.error.message })
        : t('chain.loaded', { orgs: c.store.orgs.size, chain_id: c.store.chainId });
  status.dataset.state = !c.url ? 'off' : c.loading ? 'loading' : c.error ? 'error' : 'ready';
  status.className = c.error ? 'trust-status error-text' : 'trust-status';
}

/**
 * Read OrgRegistry's keys on the node at `url` (empty: offline), where the gateway's GET /chain says the
 * log is; a node that does not answer leaves `error`, and every anchor then fails: never verified.
 */
async function loadChain(url) {
  const c = state.chain;
  // The same node again (a second change event for the field) whose keys are loaded: reloading them would
  // verify what is on screen again for nothing. (While it loads, a new load supersedes the first.)
  if (url.trim() && url.trim() === c.url && c.store) return;
  c.url = url.trim();
  c.store = null;
  c.error = null;
  const target = c.url;
  let loading = null;
  const run = async () => {
    if (!target) return;
    if (!c.info) {
      c.error = new ChainError('anchor.no_chain_info', 'the gateway does not say which contracts hold the log (GET /api/v1/chain)');
      return;
    }
    let store = null;
    let error = null;
    try {
      store = await chainTrust(target, c.info);
    } catch (e) {
      error = e instanceof ChainError ? e : new ChainError('anchor.lookup_failed', text(e?.message ?? e));
    }
    // A later load (another node typed in meanwhile) supersedes this one: its keys are not the field's node's.
    if (c.loading !== loading) return;
    c.store = store;
    c.error = error;
  };
  loading = run();
  c.loading = loading;
  renderChain();
  await loading;
  if (c.loading !== loading) return; // superseded: the later load renders and verifies again
  c.loading = null;
  renderChain();
  reverify();
}

/** What the gateway says about its chain (GET /chain); its RPC URL is the field's suggestion. */
async function chainInfo() {
  try {
    const res = await fetch(`${API}/chain`, { headers: { Accept: 'application/json' } });
    const doc = res.ok ? await res.json() : null;
    return doc && typeof doc === 'object' && typeof doc.provenance_log === 'string' ? doc : { rpc_url: doc?.rpc_url ?? null };
  } catch {
    return null;
  }
}

async function loadTrust(file) {
  // Whatever goes wrong (the file, its JSON, the schema, a bug of this page), the trust file is not in use
  // and no verdict is shown until it is removed: never "no trust file" with a verdict, as if it were absent.
  try {
    const body = decode(new Uint8Array(await file.arrayBuffer()));
    if (body === null) throw new TrustError('trust file is not valid JSON: it is not UTF-8');
    state.trust = { name: file.name, store: parseTrust(body) };
  } catch (e) {
    const message = e instanceof TrustError ? e.message : `the page could not read it: ${text(e?.message ?? e)}`;
    state.trust = { name: file.name, error: message, store: null };
  }
  renderTrust();
  reverify();
}

function wire() {
  $('trust').addEventListener('change', (e) => {
    const file = e.target.files?.[0];
    if (file) loadTrust(file);
    e.target.value = '';
  });
  $('trust-clear').addEventListener('click', () => {
    state.trust = null;
    renderTrust();
    reverify();
    $('trust').focus();
  });
  $('rpc').addEventListener('change', (e) => loadChain(e.target.value));
  const tokenInput = $('token');
  tokenInput.value = token();
  tokenInput.addEventListener('input', () => {
    try {
      sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
    } catch {
      // Without storage the field itself is read on each request.
    }
  });
  wireLanguageSwitch(state, t, () => {
    renderTrust();
    renderChain();
    render();
  });
  $('file').addEventListener('change', (e) => {
    const file = e.target.files?.[0];
    if (file) readFile(file);
    e.target.value = '';
  });
  $('verify-paste').addEventListener('click', () => verifyText($('paste').value, null));
  $('lookup').addEventListener('submit', (e) => {
    e.preventDefault();
    lookup($('q').value);
  });
  const drop = $('drop');
  // A file dropped anywhere is taken; the drop zone only shows where.
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('dragging');
  });
  document.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) drop.classList.remove('dragging');
  });
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('dragging');
    const file = e.dataTransfer?.files?.[0];
    if (file) readFile(file);
    else {
      const text = e.dataTransfer?.getData('text/plain');
      if (text) verifyText(text, null);
    }
  });
}

async function start() {
  wire();
  applyStaticText(t, state.lang);
  renderTrust();
  renderChain();
  render();
  const initial = new URLSearchParams(location.search).get('q');
  if (initial) $('q').value = initial;
  state.chain.loading = chainInfo().then(async (info) => {
    state.chain.info = info?.provenance_log ? info : null;
    const suggested = typeof info?.rpc_url === 'string' ? info.rpc_url : '';
    if (!$('rpc').value) $('rpc').value = suggested;
    await loadChain($('rpc').value);
  });
  if (initial) lookup(initial);
}

start();
