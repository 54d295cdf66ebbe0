// The events table: columns chosen and ordered by the user (remembered in
// localStorage), sortable by time, event and actor.
import { el, clear, timeCell } from './dom.js';

const STORE = 'auditstore.columns';

export function actorLabel(a) {
  const m = (a && a.metadata) || {};
  const name = m.name || m.username || m.email || m.userId || m.serviceId || m.identityId || m.keyId || '';
  const email = m.email && m.email !== name ? m.email : '';
  return { name: String(name), email: String(email), type: a?.type || '', id: actorId(a) };
}

export function actorId(a) {
  const m = (a && a.metadata) || {};
  return String(m.userId || m.serviceId || m.identityId || m.keyId || '');
}

// summary renders a short one-line text of an event's metadata.
export function summary(md) {
  if (!md || typeof md !== 'object') return '';
  const parts = [];
  for (const [k, v] of Object.entries(md)) {
    parts.push(`${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
    if (parts.join(' ').length > 120) break;
  }
  const s = parts.join(' ');
  return s.length > 120 ? s.slice(0, 119) + '…' : s;
}

export const COLUMNS = [
  { id: 'time', label: 'Time', sort: 'timestamp', cell: (e) => timeCell(e.timestamp) },
  { id: 'event', label: 'Event', sort: 'eventType', cell: (e) => el('span', { className: 'etype' }, e.event.type) },
  { id: 'actor', label: 'Actor', sort: 'actor', cell: (e) => {
    const a = actorLabel(e.actor);
    return [el('span', { className: 'aname' }, a.name || '—'), a.email ? el('span', { className: 'sub' }, a.email) : null,
      el('span', { className: 'badge' }, a.type)];
  } },
  { id: 'resource', label: 'Resource', cell: (e) => e.resource
    ? [el('span', { className: 'badge' }, e.resource.type), ' ', el('span', {}, e.resource.name || e.resource.id)] : '—' },
  { id: 'ip', label: 'IP', cell: (e) => e.ipAddress || '—' },
  { id: 'details', label: 'Details', cell: (e) => el('span', { className: 'details' }, summary(e.event.metadata)) },
  { id: 'project', label: 'Project', cell: (e) => e.projectName || e.projectId || '—' },
  { id: 'source', label: 'Source', cell: (e) => e.userAgentType || '—' },
  { id: 'trace', label: 'Trace', cell: (e) => e.traceId || '—' },
  { id: 'id', label: 'Id', cell: (e) => el('code', {}, e.id) },
];
const DEFAULT = ['time', 'event', 'actor', 'resource', 'ip', 'details'];

export function loadColumns() {
  try {
    const v = JSON.parse(localStorage.getItem(STORE));
    if (Array.isArray(v) && v.length && v.every((id) => COLUMNS.some((c) => c.id === id))) return v;
  } catch { /* default */ }
  return [...DEFAULT];
}
export function saveColumns(ids) { localStorage.setItem(STORE, JSON.stringify(ids)); }

// renderTable fills table with the events; onSort(sortField) and
// onOpen(event) are the user's actions.
export function renderTable(table, events, { columns, sort, order, onSort, onOpen, fresh }) {
  clear(table);
  const cols = columns.map((id) => COLUMNS.find((c) => c.id === id)).filter(Boolean);
  const head = el('tr', {}, cols.map((c) => {
    if (!c.sort) return el('th', { scope: 'col' }, c.label);
    const active = sort === c.sort;
    const dir = active ? (order === 'asc' ? 'ascending' : 'descending') : 'none';
    return el('th', { scope: 'col', 'aria-sort': dir },
      el('button', { type: 'button', className: 'sort', id: 'sort-' + c.id, onclick: () => onSort(c.sort) },
        c.label, active ? (order === 'asc' ? ' ▲' : ' ▼') : ''));
  }));
  const body = el('tbody', {});
  for (const e of events) {
    const tr = el('tr', { tabIndex: 0, dataset: { id: e.id }, className: fresh && fresh.has(e.id) ? 'fresh' : '',
      onclick: () => onOpen(e), onkeydown: (k) => { if (k.key === 'Enter') onOpen(e); } },
    cols.map((c) => el('td', { dataset: { col: c.id } }, c.cell(e))));
    body.append(tr);
  }
  if (!events.length) body.append(el('tr', {}, el('td', { colSpan: cols.length, className: 'empty' }, 'No events match these filters.')));
  table.append(el('thead', {}, head), body);
}

// columnChooser renders the column picker: check to show, arrows to order.
export function columnChooser(ids, onChange) {
  const list = el('ol', { className: 'columns' });
  const draw = () => {
    clear(list);
    const order = [...ids, ...COLUMNS.map((c) => c.id).filter((id) => !ids.includes(id))];
    order.forEach((id) => {
      const c = COLUMNS.find((x) => x.id === id);
      const on = ids.includes(id);
      const move = (d) => {
        const i = ids.indexOf(id), j = i + d;
        if (i < 0 || j < 0 || j >= ids.length) return;
        [ids[i], ids[j]] = [ids[j], ids[i]];
        onChange(ids); draw();
      };
      list.append(el('li', {},
        el('label', {}, el('input', { type: 'checkbox', checked: on, id: 'col-' + id, onchange: (ev) => {
          if (ev.target.checked) ids.push(id); else if (ids.length > 1) ids.splice(ids.indexOf(id), 1);
          onChange(ids); draw();
        } }), c.label),
        el('button', { type: 'button', disabled: !on, 'aria-label': `Move ${c.label} left`, onclick: () => move(-1) }, '↑'),
        el('button', { type: 'button', disabled: !on, 'aria-label': `Move ${c.label} right`, onclick: () => move(1) }, '↓')));
    });
  };
  draw();
  return list;
}
