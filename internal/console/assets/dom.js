// DOM helpers. Event data only ever becomes text nodes or attribute values
// set through the DOM: nothing here parses HTML.

// el creates an element: attrs sets properties (on*, className, hidden...)
// or, for names with a dash, attributes; children are nodes or strings
// (which become text nodes); null and false are skipped.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.includes('-') || k === 'role' || k === 'for') e.setAttribute(k, String(v));
    else e[k] = v;
  }
  append(e, children);
  return e;
}

export function append(e, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function clear(e) {
  while (e.firstChild) e.firstChild.remove();
  return e;
}

// svg creates an SVG element with attributes.
export function svg(tag, attrs, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

// safeHref returns url when it is http(s), else null: event data never
// becomes a javascript: or data: link.
export function safeHref(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch { return null; }
}

const pad = (n) => String(n).padStart(2, '0');

// localTime shows a time in the user's zone; utcTime is for the tooltip.
export function localTime(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
export function utcTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toISOString().replace('T', ' ').replace('Z', ' UTC');
}
export const zoneName = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';

// timeCell is a <time> showing local time with UTC on hover.
export function timeCell(iso) {
  return el('time', { dateTime: iso, title: utcTime(iso) }, localTime(iso));
}

// copyButton copies text to the clipboard.
export function copyButton(label, text) {
  const b = el('button', { type: 'button', className: 'copy', 'aria-label': `Copy ${label}` }, 'Copy');
  b.addEventListener('click', async () => {
    try { await navigator.clipboard.writeText(text()); b.textContent = 'Copied'; }
    catch { b.textContent = 'Copy failed'; }
    setTimeout(() => { b.textContent = 'Copy'; }, 1500);
  });
  return b;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}
