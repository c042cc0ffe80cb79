// The supervision dashboard (/dashboard): records per domain and day, refusals by code, the panels the
// domains declare (environmental exceedances per station, trace-code reuse: their titles come with the
// data, so the page names no domain's panel), the most recorded subjects, anchoring and witness lag, from
// /api/v1/dashboard/* with an auditor's or a regulator's token.
// Charts by Chart.js, bundled by webui/build.mjs (no CDN); every number is also in a table beside its chart
// and links to the records behind it (the /verify page's look-up). Gateway text reaches the DOM as
// textContent only.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from 'chart.js';
import en from './i18n/en.json';
import zh from './i18n/zh.json';
import { applyStaticText, h, initialLang, text, TOKEN_KEY, translate, wireLanguageSwitch } from '../ui.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const MESSAGES = { zh, en };
const API = document.documentElement.dataset.apiBase || '/api/v1';
const VERIFY = document.documentElement.dataset.verifyPage || '/verify/';
const DAYS = 14;
const COLOURS = ['#244a77', '#0b6b2f', '#a36a00', '#7a1fa2', '#a3141b', '#00707a', '#5a5a5a'];
// What a refusal code says to a supervisor (the examples); other codes show as themselves.
const CATEGORY = {
  RX_ALREADY_DISPENSED: 'double_dispense',
  CONSENT_MISSING: 'consent',
  CONSENT_REVOKED: 'consent',
  CONSENT_EXPIRED: 'consent',
  CONSENT_SCOPE_EXCEEDED: 'consent',
  ACCESSOR_MISMATCH: 'consent',
  SIGNATURE_INVALID: 'forged',
  KEY_REVOKED: 'forged',
  KEY_NOT_VALID: 'forged',
  ORG_MISMATCH: 'forged',
  ACCESS_CODE_INVALID: 'access_code',
  TRACE_CODE_REUSED: 'trace_reuse',
};

const state = { lang: initialLang(MESSAGES), data: null, charts: [], drill: null, drills: {} };

function t(key, params = {}) {
  return translate(MESSAGES, state.lang, key, params);
}

const $ = (id) => document.getElementById(id);
const domainName = (d) => t(`domain.${d}`) === `domain.${d}` ? d : t(`domain.${d}`);
const verifyLink = (q, label) => h('a', { href: `${VERIFY}?q=${encodeURIComponent(q)}`, class: 'mono' }, label ?? q);

function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

function setStatus(message, error = false) {
  const el = $('status');
  el.textContent = message;
  el.classList.toggle('error', error);
}

async function api(path) {
  const headers = { Accept: 'application/json' };
  const tok = token();
  if (tok) headers.Authorization = `Bearer ${tok}`;
  let resp;
  try {
    resp = await fetch(`${API}${path}`, { headers });
  } catch (e) {
    throw new Error(t('error.network', { message: e?.message ?? e }));
  }
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // An error page that is not JSON: the status says enough.
  }
  if (!resp.ok) {
    const code = text(body?.error?.code ?? '');
    const known = MESSAGES[state.lang][`error.${code}`];
    throw new Error(known ?? t('error.other', { status: resp.status, code, message: text(body?.error?.message ?? '') }));
  }
  return body;
}

// --- panels ------------------------------------------------------------------------------------------

function chart(canvas, config) {
  const c = new Chart(canvas, {
    ...config,
    options: {
      animation: false, // drawn at once: a screenshot or a print shows the final chart
      responsive: true,
      maintainAspectRatio: false,
      ...config.options,
    },
  });
  state.charts.push(c);
  return c;
}

function table(head, rows) {
  return h('table', {}, h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows));
}

function renderRecords(data) {
  const counts = new Map(data.records.map((r) => [`${r.domain} ${r.day}`, r.count]));
  const domains = data.domains;
  chart($('chart-records'), {
    type: 'bar',
    data: {
      labels: data.days.map((d) => d.slice(5)),
      datasets: domains.map((d, i) => ({
        label: domainName(d),
        data: data.days.map((day) => counts.get(`${d} ${day}`) ?? 0),
        backgroundColor: COLOURS[i % COLOURS.length],
      })),
    },
    options: {
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      onClick: (_event, elements) => {
        const hit = elements[0];
        if (hit) drill(domains[hit.datasetIndex], data.days[hit.index]);
      },
    },
  });
  const days = data.days.filter((day) => domains.some((d) => counts.get(`${d} ${day}`)));
  const holder = $('table-records');
  holder.replaceChildren();
  if (!days.length) {
    holder.append(h('p', { class: 'hint' }, t('records.none')));
    return;
  }
  const rows = days.reverse().map((day) =>
    h('tr', {},
      h('th', { scope: 'row' }, day),
      domains.map((d) => {
        const n = counts.get(`${d} ${day}`) ?? 0;
        return h('td', { class: 'n' }, n ? h('button', {
          type: 'button', class: 'link', 'data-domain': d, 'data-day': day, onclick: () => drill(d, day),
        }, n) : '0');
      })));
  holder.append(table([t('records.day'), ...domains.map(domainName)], rows));
}

async function drill(domain, day) {
  state.drill = { domain, day };
  const out = $('drill');
  out.setAttribute('aria-busy', 'true');
  try {
    const page = await api(`/dashboard/records?domain=${encodeURIComponent(domain)}&day=${encodeURIComponent(day)}`);
    const rows = page.items.map((r) => h('tr', {},
      h('td', {}, r.timestamp), h('td', {}, r.kind), h('td', {}, r.org), h('td', {}, verifyLink(r.subject)),
      h('td', {}, verifyLink(r.id, `${r.id.slice(0, 16)}…`))));
    out.replaceChildren(
      h('h3', {}, t('records.drill', { domain: domainName(domain), day, n: page.items.length })),
      table([t('drill.time'), t('drill.kind'), t('drill.org'), t('drill.subject'), t('drill.id')], rows),
      ...(page.next_cursor ? [h('p', { class: 'hint' }, t('records.more'))] : []),
    );
  } catch (e) {
    out.replaceChildren(h('p', { class: 'status error' }, e.message));
  } finally {
    out.setAttribute('aria-busy', 'false');
  }
}

function renderRefusals(data) {
  const byCode = new Map();
  for (const r of data.refusals.items) byCode.set(r.code, (byCode.get(r.code) ?? 0) + r.count);
  const codes = [...byCode.keys()];
  $('refusals-since').textContent = t('refusals.since', { time: new Date(data.refusals.since * 1000).toISOString().slice(0, 19) });
  chart($('chart-refusals'), {
    type: 'bar',
    data: {
      labels: codes,
      datasets: [{
        label: t('refusals.count'),
        data: codes.map((c) => byCode.get(c)),
        backgroundColor: codes.map((c) => (CATEGORY[c] ? '#a3141b' : '#5a6b80')),
      }],
    },
    options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const holder = $('table-refusals');
  holder.replaceChildren();
  if (!data.refusals.items.length) {
    holder.append(h('p', { class: 'hint' }, t('refusals.none')));
    return;
  }
  holder.append(table(
    [t('refusals.code'), t('refusals.category'), t('refusals.kind'), t('refusals.count')],
    data.refusals.items.map((r) => h('tr', { 'data-code': r.code },
      h('td', { class: 'mono' }, r.code),
      h('td', { class: CATEGORY[r.code] ? 'flag' : '' }, CATEGORY[r.code] ? t(`category.${CATEGORY[r.code]}`) : ''),
      h('td', {}, r.kind),
      h('td', { class: 'n' }, h('button', {
        type: 'button', class: 'link', 'data-code': r.code, 'data-kind': r.kind, onclick: () => drillRefusals(r.code, r.kind),
      }, r.count)))),
  ));
}

// The drill-downs below each re-run on a language switch (state.drills, by the element they fill).
async function drillInto(id, again, load) {
  state.drills[id] = again;
  const out = $(id);
  out.setAttribute('aria-busy', 'true');
  try {
    out.replaceChildren(...(await load()).filter(Boolean));
  } catch (e) {
    out.replaceChildren(h('p', { class: 'status error' }, e.message));
  } finally {
    out.setAttribute('aria-busy', 'false');
  }
}

function drillRefusals(code, kind) {
  return drillInto('drill-refusals', () => drillRefusals(code, kind), async () => {
    const page = await api(`/dashboard/refusals?code=${encodeURIComponent(code)}&kind=${encodeURIComponent(kind)}`);
    const rows = page.items.map((r) => h('tr', { 'data-seq': r.seq },
      h('td', {}, r.at), h('td', {}, r.org), h('td', {}, r.subject ? verifyLink(r.subject) : ''),
      h('td', { class: 'mono' }, JSON.stringify(r.details))));
    return [
      h('h3', {}, t('refusals.drill', { code, kind, n: page.items.length })),
      h('p', { class: 'hint' }, t('refusals.kept')),
      table([t('drill.refused_at'), t('drill.org'), t('drill.subject'), t('drill.details')], rows),
      page.next_cursor ? h('p', { class: 'hint' }, t('records.more')) : null,
    ];
  });
}

// --- the domains' panels ------------------------------------------------------------------------------

const panelId = (p) => `${p.domain}-${p.name}`;
const panelTitle = (p, field = 'title') => p[field][state.lang] ?? p[field].en ?? p.name;

function drillPanel(p, key) {
  return drillInto(`drill-${panelId(p)}`, () => drillPanel(p, key), async () => {
    const page = await api(`/dashboard/panels/${encodeURIComponent(p.domain)}/${encodeURIComponent(p.name)}`
      + `?key=${encodeURIComponent(key)}&days=${DAYS}`);
    const rows = page.items.map((i) => h('tr', {},
      h('td', {}, i.at), h('td', {}, i.org), h('td', {}, verifyLink(i.subject)), h('td', { class: 'mono' }, i.detail),
      h('td', {}, i.record_id ? verifyLink(i.record_id, `${i.record_id.slice(0, 16)}…`) : t('panels.no_record'))));
    return [
      h('h3', {}, t('panels.drill', { title: panelTitle(p), key, n: page.items.length })),
      table([t('panels.at'), t('drill.org'), t('drill.subject'), t('panels.detail'), t('drill.id')], rows),
      page.next_cursor ? h('p', { class: 'hint' }, t('records.more')) : null,
    ];
  });
}

function renderPanels(data) {
  const holder = $('domain-panels');
  holder.replaceChildren(...data.panels.map((p) => {
    const id = panelId(p);
    const canvas = h('canvas', { id: `chart-${id}`, role: 'img', 'aria-label': panelTitle(p) });
    const numbers = p.counts.length
      ? table([panelTitle(p, 'key_title'), t('panels.count')], p.counts.map((c) => h('tr', { 'data-key': c.key },
        h('th', { scope: 'row', class: 'mono' }, c.key),
        h('td', { class: 'n' }, h('button', { type: 'button', class: 'link', 'data-key': c.key, onclick: () => drillPanel(p, c.key) }, c.count)))))
      : h('p', { class: 'hint' }, t('panels.none'));
    return h('section', { class: 'panel', id: `panel-${id}`, 'data-domain': p.domain, 'data-panel': p.name },
      h('h2', {}, panelTitle(p)),
      h('p', { class: 'hint' }, t('panels.domain', { domain: domainName(p.domain) })),
      h('div', { class: 'chart' }, canvas),
      h('div', { id: `table-${id}`, class: 'numbers' }, numbers),
      h('div', { id: `drill-${id}`, class: 'drill', 'aria-live': 'polite' }));
  }));
  for (const p of data.panels) {
    chart($(`chart-${panelId(p)}`), {
      type: 'bar',
      data: {
        labels: p.counts.map((c) => c.key),
        datasets: [{ label: t('panels.count'), data: p.counts.map((c) => c.count), backgroundColor: '#a3141b' }],
      },
      options: {
        indexAxis: 'y',
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
        onClick: (_event, elements) => {
          if (elements[0]) drillPanel(p, p.counts[elements[0].index].key);
        },
      },
    });
  }
}

function renderSubjects(data) {
  const top = [...data.subjects].sort((a, b) => b.count - a.count).slice(0, 12);
  chart($('chart-subjects'), {
    type: 'bar',
    data: {
      labels: top.map((s) => s.subject),
      datasets: [{
        label: t('subjects.count'),
        data: top.map((s) => s.count),
        backgroundColor: top.map((s) => COLOURS[data.domains.indexOf(s.domain) % COLOURS.length]),
      }],
    },
    options: { indexAxis: 'y', plugins: { legend: { display: false } }, scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const holder = $('table-subjects');
  holder.replaceChildren(table(
    [t('subjects.domain'), t('subjects.subject'), t('subjects.count')],
    data.subjects.map((s) => h('tr', {},
      h('td', {}, domainName(s.domain)), h('td', {}, verifyLink(s.subject)),
      h('td', { class: 'n' }, verifyLink(s.subject, s.count)))),
  ));
}

function renderLag(data) {
  const p = data.progress;
  const sizes = ['tree_size', 'checkpoint_size', 'anchored_size'];
  const witnesses = p.witnesses ?? [];
  chart($('chart-lag'), {
    type: 'bar',
    data: {
      labels: [...sizes.map((k) => t(`lag.${k}`)), ...witnesses.map((w) => w.name)],
      datasets: [{
        label: t('lag.value'),
        data: [...sizes.map((k) => p[k]), ...witnesses.map((w) => w.cosigned)],
        backgroundColor: [...sizes.map((_, i) => COLOURS[i]), ...witnesses.map((w) => (w.up ? '#00707a' : '#a3141b'))],
      }],
    },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const yes = (v) => (v ? t('yes') : t('no'));
  const rows = [
    ...['backlog', 'anchor_lag_records'].map((k) => [t(`lag.${k}`), p[k]]),
    [t('lag.anchor_lag_seconds'), Math.round(p.anchor_lag_seconds)],
    [t('lag.chain_up'), yes(p.chain_up)],
    [t('lag.anchor_stuck'), yes(p.anchor_stuck)],
    ...witnesses.map((w) => [t('lag.witness', { name: w.name, cosigned: w.cosigned, lag: w.lag, up: w.up ? t('lag.up') : t('lag.down') }), w.lag]),
  ];
  $('table-lag').replaceChildren(table([t('lag.item'), t('lag.value')],
    rows.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'n' }, v)))));
}

function render() {
  for (const c of state.charts) c.destroy();
  state.charts = [];
  const data = state.data;
  $('panels').hidden = false;
  renderRecords(data);
  renderRefusals(data);
  renderPanels(data);
  renderSubjects(data);
  renderLag(data);
  setStatus(t('status.updated', { time: data.generated_at }));
  document.body.dataset.ready = 'true'; // tests wait for this
}

async function load() {
  if (!token()) {
    setStatus(t('status.signin'));
    return;
  }
  setStatus(t('status.loading'));
  try {
    state.data = await api(`/dashboard/summary?days=${DAYS}`);
    render();
  } catch (e) {
    $('panels').hidden = true;
    setStatus(e.message, true);
  }
}

applyStaticText(t, state.lang);
wireLanguageSwitch(state, t, () => {
  if (state.data) render();
  if (state.drill) drill(state.drill.domain, state.drill.day);
  for (const again of Object.values(state.drills)) again();
});
$('signin').addEventListener('submit', (event) => {
  event.preventDefault();
  try {
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
  } catch {
    // The token then lasts only for this load.
  }
  load();
});
load();
