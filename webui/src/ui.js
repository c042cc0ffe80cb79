// What the /verify page and the /dashboard share: the language and sign-in they keep per browser and tab,
// messages by language, and the one way untrusted text reaches the DOM (as text, never HTML).

// One language choice (localStorage) and one sign-in (sessionStorage, gone with the tab) for both pages.
export const LANG_KEY = 'shancheng.verify.lang';
export const TOKEN_KEY = 'shancheng.verify.token';

/** The language chosen before, else the browser's: `zh*` → Chinese (the audience's default), else English. */
export function initialLang(messages) {
  try {
    const saved = localStorage.getItem(LANG_KEY);
    if (saved && messages[saved]) return saved;
  } catch {
    // Storage may be disabled; the browser's language decides then.
  }
  return (navigator.language || '').toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

/** Remember a language chosen with the switch (or not, when storage is disabled: still switched). */
export function rememberLang(lang) {
  try {
    localStorage.setItem(LANG_KEY, lang);
  } catch {
    // Not remembered, still switched.
  }
}

/**
 * Text of any value from a bundle or the gateway, never throwing: a parsed object may carry its own
 * "toString" or "__proto__" member, on which String() throws or lies.
 */
export function text(v) {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' || v === null || v === undefined) return `${v}`;
  try {
    return JSON.stringify(v) ?? '';
  } catch {
    return '?';
  }
}

/** A message in ``lang`` (else English, else its key) with its {placeholders} filled as text. */
export function translate(messages, lang, key, params = {}) {
  const message = messages[lang][key] ?? messages.en[key] ?? key;
  return message.replace(/\{(\w+)\}/g, (m, name) => (Object.hasOwn(params, name) ? text(params[name]) : m));
}

/** Create an element; strings and numbers become text nodes, never HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : text(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(text(c)));
  }
  return el;
}

/** The page's static text (`data-i18n`, `-placeholder`, `-label`), its lang and title, the switch's state. */
export function applyStaticText(t, lang) {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = `${t('app.title')} · Shancheng Provenance`;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel));
  for (const btn of document.querySelectorAll('[data-lang]')) btn.setAttribute('aria-pressed', String(btn.dataset.lang === lang));
}

/**
 * Wire the page's language switch: a click remembers the language, puts the static text in it, then
 * `redraw()` draws again what the page drew in the language before.
 */
export function wireLanguageSwitch(state, t, redraw) {
  for (const btn of document.querySelectorAll('[data-lang]')) {
    btn.addEventListener('click', () => {
      state.lang = btn.dataset.lang;
      rememberLang(state.lang);
      applyStaticText(t, state.lang);
      redraw();
    });
  }
}
