// The prescription chain on the /verify page: a prescription's timeline (issue → 审方 review → dispense with
// its boxes' traceability codes → 医保 settlement, or revoked / expired) and the look-up of one box by its
// code. Only verified records take part, with what their signed payloads say, never what the gateway listed.
import { h, text } from './ui.js';

// The MedicationDispense extension carrying one box's code (provenance/trace_code.py TRACE_CODE_URL).
const TRACE_CODE_URL = 'urn:shancheng-provenance:fhir:drug-trace-code';
const STAGES = { 'rx.issue': 'issued', 'rx.review': 'reviewed', 'rx.dispense': 'dispensed', 'rx.revoke': 'revoked', 'rx.settle': 'settled' };

/** The codes a signed MedicationDispense lists, as written there (the gateway's normal form or a raw scan). */
export function listedCodes(payload) {
  const ext = payload && typeof payload === 'object' ? payload.extension : null;
  return (Array.isArray(ext) ? ext : [])
    .filter((e) => e && typeof e === 'object' && e.url === TRACE_CODE_URL && typeof e.valueString === 'string')
    .map((e) => e.valueString);
}

/** What a verified record's payload adds to its stage: review decision, validity, boxes, amounts. */
function stageDetail(kind, payload) {
  const p = payload && typeof payload === 'object' ? payload : {};
  if (kind === 'rx.issue') {
    const end = p.dispenseRequest?.validityPeriod?.end;
    return { validUntil: typeof end === 'string' ? end : null };
  }
  if (kind === 'rx.review') return { decision: p.decision === 'rejected' ? 'rejected' : p.decision === 'approved' ? 'approved' : null };
  if (kind === 'rx.dispense') return { codes: listedCodes(p) };
  if (kind === 'rx.settle') {
    const yuan = (v) => (typeof v === 'string' ? v : null);
    return { fund: yuan(p.fund_paid), personal: yuan(p.personal_paid) };
  }
  return {};
}

/**
 * The prescription's steps from the subject's rx.* records whose bundle held (the listing check included),
 * in the order the gateway listed them (acceptance order, which the chain also enforces; organisations'
 * clocks may disagree, so signed timestamps are shown but not used to reorder).
 */
export function timelineEvents(entries, now = Date.now()) {
  const events = [];
  for (const e of entries) {
    if (!e.result?.ok) continue;
    const rec = e.result.bundle.record;
    const stage = STAGES[rec.kind];
    if (!stage) continue;
    events.push({ stage, org: rec.org, at: rec.timestamp, entry: e, ...stageDetail(rec.kind, e.result.bundle.payload) });
  }
  const issued = events.find((ev) => ev.stage === 'issued');
  const closed = events.some((ev) => ev.stage === 'dispensed' || ev.stage === 'revoked');
  if (issued?.validUntil && !closed && Date.parse(issued.validUntil) < now) {
    events.push({ stage: 'expired', org: null, at: issued.validUntil, entry: null });
  }
  return events;
}

export function timelineView(entries, t, icons) {
  const events = timelineEvents(entries);
  if (!events.length) return null;
  const current = events.at(-1).stage;
  return h(
    'section',
    { class: 'timeline', 'aria-labelledby': 'timeline-heading', 'data-state': current },
    h('h3', { id: 'timeline-heading' }, t('timeline.heading')),
    h('p', { class: 'timeline-state' }, t('timeline.state', { state: t(`timeline.${current}`) })),
    h('p', { class: 'note' }, t('timeline.note')),
    h(
      'ol',
      {},
      events.map((ev) => {
        const verdict = ev.entry?.result?.verdict ?? null;
        return h(
          'li',
          { class: `event ${ev.stage}${ev.decision ? ` ${ev.decision}` : ''}`, 'data-stage': ev.stage, 'data-verdict': verdict },
          h('span', { class: 'stage' }, t(`timeline.${ev.stage}`)),
          ' ',
          h('time', { datetime: ev.at }, ev.at),
          ev.org ? [' · ', h('span', { class: 'org' }, t('timeline.by', { org: ev.org }))] : null,
          ev.validUntil ? [' · ', t('timeline.valid_until', { end: ev.validUntil })] : null,
          ev.decision ? [' · ', h('span', { class: 'decision', 'data-decision': ev.decision }, t(`timeline.review.${ev.decision}`))] : null,
          ev.fund !== undefined ? [' · ', t('timeline.amounts', { fund: ev.fund ?? '?', personal: ev.personal ?? '?' })] : null,
          verdict === null ? null : [' ', h('span', { class: `badge ${verdict}` }, icons[verdict], t(`row.${verdict}`))],
          ev.codes?.length
            ? h(
                'ul',
                { class: 'codes', 'aria-label': t('timeline.codes', { n: ev.codes.length }) },
                ev.codes.map((c) => h('li', { class: 'mono', 'data-code': c }, c)),
              )
            : null,
        );
      }),
    ),
  );
}

/**
 * The answer of a code look-up: the box in its normal form, dispensed or not, and where and when with the
 * dispense record verified (its bundle) and listing the box. The page does not re-derive normal forms
 * (`provenance trace code:…` does): a box written in another form in the signed dispense is said so.
 */
export function codeView(view, t, icons, bundleView) {
  const a = view.answer && typeof view.answer === 'object' ? view.answer : {};
  const use = a.dispense && typeof a.dispense === 'object' ? a.dispense : null;
  const code = text(a.code);
  const parts = [h('h2', { tabindex: '-1' }, t('code.heading', { code }))];
  parts.push(h('p', { class: 'mono' }, t('code.form', { form: text(a.form), digest: text(a.digest) })));
  if (!a.dispensed) {
    parts.push(h('p', { class: 'code-state', 'data-dispensed': 'false' }, t('code.not_dispensed')));
    return h('div', { class: 'code-result', 'data-code': code }, parts);
  }
  parts.push(
    h(
      'dl',
      { class: 'code-use', 'data-dispensed': 'true' },
      [
        ['code.pharmacy', use?.pharmacy],
        ['code.rx', use?.rx_id ? `rx:${text(use.rx_id)}` : t('code.rx_elsewhere')],
        ['code.handed_over', use?.handed_over_at],
        ['code.record', use?.record],
        ['code.chain', use?.chain_status],
      ].map(([k, v]) => [h('dt', {}, t(k)), h('dd', { 'data-field': k.slice('code.'.length) }, v === null || v === undefined ? '?' : text(v))]),
    ),
  );
  if (view.error) {
    parts.push(h('p', { class: 'error', role: 'alert', 'data-error': view.error.key }, t(view.error.key, view.error.params)));
  } else if (view.result) {
    const listed = view.result.ok ? listedCodes(view.result.bundle.payload) : [];
    // As written (no second copy of the normalisation here); the gateway's identity covers a box written
    // without its expiry or batch.
    const held = listed.includes(code) || listed.includes(view.asked) || (a.identity != null && listed.includes(text(a.identity)));
    if (view.result.ok) {
      parts.push(
        h(
          'p',
          { class: held ? 'box-listed' : 'warning', 'data-box-listed': String(held) },
          held ? [icons.verified, t('code.listed')] : t('code.not_listed', { codes: listed.join(', ') || '—' }),
        ),
      );
    }
    parts.push(h('div', { class: 'code-record' }, bundleView(view.result, text(use?.record))));
  }
  return h('div', { class: 'code-result', 'data-code': code }, parts);
}
