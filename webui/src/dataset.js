// A dataset's history on the /verify page (issue #18): its life in log order, from the records whose bundle
// holds (what their signed records say), and the datasets upstream (its inputs) and downstream (derived from
// it) as the gateway's lineage read lists them. Everything here is untrusted text: it reaches the DOM as text.
import { text } from './ui.js';

const STAGES = {
  'data.collected': 'collected',
  'data.stored': 'stored',
  'share.request': 'requested',
  'share.consent': 'consented',
  'share.access': 'accessed',
  'share.revoke_consent': 'withdrawn',
  'data.derived': 'derived',
  'data.opened': 'opened',
  'data.settled': 'settled',
  'data.countersigned': 'countersigned',
};

/** The dataset's life: one event per verified record of a lifecycle or sharing kind, in log order. */
export function lifeEvents(entries) {
  const events = [];
  for (const e of entries) {
    if (!e.result?.ok) continue;
    const rec = e.result.bundle.record;
    const stage = STAGES[rec.kind];
    if (stage) events.push({ stage, org: text(rec.org), at: text(rec.timestamp), verdict: e.result.verdict, id: e.item.id });
  }
  return events;
}

/** The lineage read's datasets, each {dataset, depth, owner, status}, or null if it is not one. */
function nodes(list) {
  if (!Array.isArray(list)) return null;
  return list
    .filter((n) => n && typeof n.dataset === 'string' && Number.isSafeInteger(n.depth))
    .map((n) => ({ dataset: n.dataset, depth: n.depth, owner: text(n.owner), status: text(n.status) }));
}

/** Parse the gateway's lineage answer; null when it is not a lineage of ``dataset``. */
export function parseLineage(doc, dataset) {
  if (!doc || typeof doc !== 'object' || doc.dataset !== dataset) return null;
  const ancestors = nodes(doc.ancestors);
  const descendants = nodes(doc.descendants);
  if (!ancestors || !descendants) return null;
  return { ancestors, descendants, truncated: doc.truncated === true };
}

function related(h, t, lookup, list, side) {
  if (!list.length) return h('p', { class: 'note' }, t(`dataset.${side}.none`));
  return h(
    'ul',
    { class: `lineage-${side}` },
    list.map((n) =>
      h(
        'li',
        { 'data-dataset': n.dataset, 'data-depth': String(n.depth) },
        h('button', { type: 'button', class: 'link', onclick: () => lookup(`dataset:${n.dataset}`) }, `dataset:${n.dataset}`),
        ' ',
        t('dataset.node', { depth: n.depth, owner: n.owner, status: n.status }),
      ),
    ),
  );
}

/** The dataset section: life (verified records in order), then upstream and downstream datasets. */
export function datasetView(view, { h, t, lookup, icons }) {
  const events = lifeEvents(view.entries);
  const lineage = view.lineage;
  return h(
    'section',
    { class: 'dataset-history', 'aria-labelledby': 'dataset-heading' },
    h('h3', { id: 'dataset-heading' }, t('dataset.heading')),
    h('p', { class: 'note' }, t('timeline.note')),
    events.length
      ? h(
          'ol',
          { class: 'dataset-life' },
          events.map((ev) =>
            h(
              'li',
              { class: `event ${ev.stage}`, 'data-stage': ev.stage, 'data-record': ev.id },
              h('span', { class: 'stage' }, t(`dataset.${ev.stage}`)),
              ' ',
              h('time', { datetime: ev.at }, ev.at),
              ' · ',
              h('span', { class: 'org' }, t('timeline.by', { org: ev.org })),
              ' ',
              h('span', { class: `badge ${ev.verdict}` }, icons[ev.verdict] ?? '', t(`row.${ev.verdict}`)),
            ),
          ),
        )
      : null,
    h('h4', {}, t('dataset.upstream')),
    lineage === undefined
      ? h('p', { class: 'busy' }, t('status.loading'))
      : lineage === null
        ? h('p', { class: 'note', 'data-lineage': 'none' }, t('dataset.no_lineage'))
        : related(h, t, lookup, lineage.ancestors, 'upstream'),
    h('h4', {}, t('dataset.downstream')),
    lineage ? related(h, t, lookup, lineage.descendants, 'downstream') : null,
    lineage?.truncated ? h('p', { class: 'warning' }, t('dataset.truncated')) : null,
  );
}
