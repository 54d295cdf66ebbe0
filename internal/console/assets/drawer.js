// The detail drawer: the whole event, metadata as collapsible JSON, the
// change as old → new, and links to the related timelines.
import { el, clear, copyButton, localTime, utcTime, safeHref } from './dom.js';
import { actorLabel, actorId } from './table.js';
import { withFilter } from './state.js';

// changesOf reads the change an event's metadata describes, by the
// console's convention (README, "Change diffs"):
//   metadata.changes = {"<field>": {"old": x, "new": y}, ...}   (or before/after, from/to)
//   metadata.changes = [{"field": "<field>", "old": x, "new": y}, ...]
//   metadata.before = {...} and metadata.after = {...}           (top-level keys compared)
// It returns [{field, old, new, hasOld, hasNew}], or [] when there is none.
export function changesOf(md) {
  if (!md || typeof md !== 'object') return [];
  const pick = (o, ...ks) => { for (const k of ks) if (o && typeof o === 'object' && k in o) return [true, o[k]]; return [false, undefined]; };
  const item = (field, o) => {
    const [hasOld, oldV] = pick(o, 'old', 'before', 'from');
    const [hasNew, newV] = pick(o, 'new', 'after', 'to');
    return hasOld || hasNew ? { field: String(field), old: oldV, new: newV, hasOld, hasNew } : null;
  };
  const c = md.changes;
  if (Array.isArray(c)) return c.map((x) => x && item(x.field ?? x.name ?? '', x)).filter(Boolean);
  if (c && typeof c === 'object') return Object.entries(c).map(([k, v]) => item(k, v)).filter(Boolean);
  const b = md.before, a = md.after;
  if (b && a && typeof b === 'object' && typeof a === 'object' && !Array.isArray(b) && !Array.isArray(a)) {
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
    return keys.filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]))
      .map((k) => ({ field: k, old: b[k], new: a[k], hasOld: k in b, hasNew: k in a }));
  }
  return [];
}

const show = (v) => (typeof v === 'string' ? v : JSON.stringify(v));

// jsonTree renders a value as a collapsible tree of text.
export function jsonTree(v, key, depth = 0) {
  const label = key === undefined ? null : el('span', { className: 'jk' }, JSON.stringify(String(key)), ': ');
  if (v && typeof v === 'object') {
    const entries = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    const [open, close] = Array.isArray(v) ? ['[', ']'] : ['{', '}'];
    const d = el('details', { open: depth < 2, className: 'jn' },
      el('summary', {}, label, open, el('span', { className: 'jcount' }, ` ${entries.length} ${Array.isArray(v) ? 'items' : 'keys'} `), close));
    for (const [k, x] of entries) d.append(el('div', { className: 'ji' }, jsonTree(x, Array.isArray(v) ? undefined : k, depth + 1)));
    return d;
  }
  const cls = v === null ? 'jnull' : typeof v === 'string' ? 'jstr' : typeof v === 'number' ? 'jnum' : 'jbool';
  return el('div', { className: 'jl' }, label, el('span', { className: cls }, JSON.stringify(v)));
}

function row(label, value, ...extra) {
  return [el('dt', {}, label), el('dd', {}, value === '' || value == null ? '—' : value, ...extra)];
}

export class Drawer {
  constructor(node, config) {
    this.node = node;
    this.config = config;
    node.addEventListener('keydown', (e) => { if (e.key === 'Escape') this.close(); });
  }

  close() {
    this.node.hidden = true;
    document.body.classList.remove('drawer-open');
    if (this.opener && document.contains(this.opener)) this.opener.focus();
  }

  open(e) {
    this.opener = document.activeElement;
    const n = clear(this.node);
    const a = actorLabel(e.actor);
    const link = (id, text, changes) => el('a', { id, href: '#/log?' + withFilter(new URLSearchParams(), changes) }, text);
    const links = el('nav', { className: 'related', 'aria-label': 'Related events' });
    if (e.resource && e.resource.type && e.resource.id) {
      links.append(link('link-resource', 'Resource timeline', { resourceType: e.resource.type, resourceId: e.resource.id }));
    }
    if (e.traceId) {
      links.append(link('link-trace', 'This trace', { traceId: e.traceId }));
      const tpl = this.config.traceUrl;
      const href = tpl ? safeHref(tpl.replace('{traceId}', () => encodeURIComponent(e.traceId))) : null;
      if (href) links.append(el('a', { id: 'link-trace-out', href, target: '_blank', rel: 'noopener noreferrer' }, 'Execution logs ↗'));
    }
    if (actorId(e.actor)) links.append(link('link-actor', 'Actor activity', { actorId: actorId(e.actor) }));
    const md = e.event.metadata;
    const changes = changesOf(md);
    n.append(
      el('header', {},
        el('h2', { id: 'drawer-title' }, e.event.type),
        el('button', { type: 'button', className: 'close', id: 'drawer-close', 'aria-label': 'Close details', onclick: () => this.close() }, '✕')),
      links,
      changes.length ? el('section', { className: 'diff', id: 'drawer-diff' }, el('h3', {}, 'Changes'),
        el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'Field'), el('th', {}, 'Old'), el('th', {}), el('th', {}, 'New'))),
          el('tbody', {}, changes.map((c) => el('tr', {}, el('td', {}, c.field),
            el('td', { className: 'old' }, c.hasOld ? show(c.old) : '(none)'), el('td', {}, '→'),
            el('td', { className: 'new' }, c.hasNew ? show(c.new) : '(removed)')))))) : null,
      el('dl', { className: 'fields' },
        row('Id', e.id, copyButton('id', () => e.id)),
        row('Time', el('time', { dateTime: e.timestamp, title: utcTime(e.timestamp) }, localTime(e.timestamp)), ' ', el('span', { className: 'sub' }, utcTime(e.timestamp))),
        row('Actor', [a.name, a.email ? ` <${a.email}>` : ''].join(''), ' ', el('span', { className: 'badge' }, a.type)),
        row('Resource', e.resource ? `${e.resource.type} ${e.resource.id}${e.resource.name ? ' (' + e.resource.name + ')' : ''}` : ''),
        row('Project', e.projectName ? `${e.projectName} (${e.projectId})` : e.projectId),
        row('IP address', e.ipAddress),
        row('Source', e.userAgentType),
        row('User agent', e.userAgent),
        row('Trace id', e.traceId, e.traceId ? copyButton('trace id', () => e.traceId) : null),
        row('Received', utcTime(e.receivedAt)),
        row('Expires', utcTime(e.expiresAt))),
      el('section', { className: 'json' }, el('h3', {}, 'Event metadata ', copyButton('metadata', () => JSON.stringify(md ?? null, null, 2))),
        md ? jsonTree(md) : el('p', {}, 'none')),
      el('section', { className: 'json' }, el('h3', {}, 'Actor metadata ', copyButton('actor metadata', () => JSON.stringify(e.actor.metadata ?? null, null, 2))),
        e.actor.metadata ? jsonTree(e.actor.metadata) : el('p', {}, 'none')),
      el('section', { className: 'json' }, el('h3', {}, 'Whole event ', copyButton('event', () => JSON.stringify(e, null, 2))), jsonTree(e, undefined, 1)));
    n.hidden = false;
    document.body.classList.add('drawer-open');
    n.focus();
  }
}
