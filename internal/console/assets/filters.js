// The filter bar: every filter of GET /v1/events.
import { el, clear, zoneName } from './dom.js';
import { request } from './api.js';
import { filters } from './state.js';

const ACTOR_TYPES = ['user', 'service', 'identity', 'platform', 'scimClient', 'unknownUser', 'apiKey'];
const SOURCES = ['web', 'cli', 'k8-operator', 'terraform', 'api', 'other'];
const PRESETS = [['Last hour', 3600e3], ['24 h', 86400e3], ['7 d', 7 * 86400e3], ['30 d', 30 * 86400e3]];

const pad = (n) => String(n).padStart(2, '0');
function toLocalInput(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fromLocalInput(v) {
  if (!v) return '';
  const d = new Date(v);
  return isNaN(d) ? '' : d.toISOString();
}

function field(label, input, extra) {
  return el('label', { className: 'field' }, el('span', {}, label), input, extra);
}

// FilterBar renders the form and reports the chosen parameters to apply.
export class FilterBar {
  constructor(apply) {
    this.apply = apply;
    const i = (name, placeholder) => el('input', { name, id: 'f-' + name, placeholder, autocomplete: 'off', spellcheck: false });
    this.types = el('div', { className: 'types-list', id: 'f-types', role: 'group', 'aria-label': 'Event types' });
    this.typesButton = el('button', { type: 'button', id: 'f-types-button', 'aria-expanded': 'false', 'aria-controls': 'f-types-panel' }, 'All events');
    this.typesPanel = el('div', { className: 'types-panel', id: 'f-types-panel', hidden: true },
      el('button', { type: 'button', id: 'f-types-all', onclick: () => this.setTypes([]) }, 'All events'), this.types);
    this.typesButton.addEventListener('click', () => this.toggleTypes());
    this.email = i('actorEmail', 'alice@example.com');
    this.emailMode = el('select', { id: 'f-email-mode', 'aria-label': 'Email match' },
      el('option', { value: 'actorEmailContains' }, 'contains'),
      el('option', { value: 'actorEmailPrefix' }, 'starts with'),
      el('option', { value: 'actorEmail' }, 'is'));
    this.actorType = el('select', { id: 'f-actorType', name: 'actorType' }, el('option', { value: '' }, 'Any'),
      ACTOR_TYPES.map((t) => el('option', { value: t }, t)));
    this.actorId = i('actorId', 'user id');
    this.resourceType = i('resourceType', 'secret');
    this.resourceId = i('resourceId', 'id');
    this.projectId = i('projectId', 'project id');
    this.ip = i('ipAddress', '10.0.0.0/8');
    this.source = i('userAgentType', 'web, cli…');
    this.source.setAttribute('list', 'f-sources');
    this.trace = i('traceId', 'trace id');
    this.metadata = el('textarea', { id: 'f-metadata', rows: 1, placeholder: 'key=value (one per line)', spellcheck: false });
    this.from = el('input', { type: 'datetime-local', id: 'f-from', title: `Your time zone: ${zoneName()}` });
    this.to = el('input', { type: 'datetime-local', id: 'f-to', title: `Your time zone: ${zoneName()}` });
    this.access = el('input', { type: 'checkbox', id: 'f-access' });
    this.form = el('form', { className: 'filters', id: 'filters', role: 'search', onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      el('div', { className: 'types' }, el('span', { className: 'label' }, 'Event type'), this.typesButton, this.typesPanel),
      field('Actor email', this.email, this.emailMode),
      field('Actor type', this.actorType),
      field('Actor id', this.actorId),
      field('Resource type', this.resourceType),
      field('Resource id', this.resourceId),
      field('Project', this.projectId),
      field('IP or CIDR', this.ip),
      field('Source', this.source, el('datalist', { id: 'f-sources' }, SOURCES.map((s) => el('option', { value: s })))),
      field('Trace id', this.trace),
      field('Metadata', this.metadata),
      field(`From (${zoneName()})`, this.from),
      field(`To (${zoneName()})`, this.to),
      el('div', { className: 'presets', role: 'group', 'aria-label': 'Time presets' },
        PRESETS.map(([label, ms]) => el('button', { type: 'button', className: 'preset', dataset: { ms },
          onclick: () => {
            this.fromIso = new Date(Date.now() - ms).toISOString();
            this.from.value = toLocalInput(this.fromIso); this.to.value = ''; this.submit();
          } }, label))),
      el('label', { className: 'check' }, this.access, 'Include access records'),
      el('div', { className: 'actions' },
        el('button', { type: 'submit', id: 'f-apply', className: 'primary' }, 'Apply'),
        el('button', { type: 'button', id: 'f-clear', onclick: () => this.apply(new URLSearchParams()) }, 'Clear filters')));
    this.selected = [];
    this.counts = [];
  }

  toggleTypes(open) {
    const show = open ?? this.typesPanel.hidden;
    this.typesPanel.hidden = !show;
    this.typesButton.setAttribute('aria-expanded', String(show));
  }

  setTypes(types) {
    this.selected = types;
    this.toggleTypes(false);
    this.submit();
  }

  // show fills the form from the URL's parameters.
  show(params) {
    const one = (k) => params.get(k) || '';
    this.selected = params.getAll('eventType').flatMap((v) => v.split(',')).filter(Boolean);
    this.typesButton.textContent = this.selected.length ? `Event types: ${this.selected.join(', ')}` : 'All events';
    this.emailMode.value = ['actorEmail', 'actorEmailPrefix', 'actorEmailContains'].find((k) => params.has(k)) || 'actorEmailContains';
    this.email.value = one(this.emailMode.value);
    this.actorType.value = one('actorType');
    this.actorId.value = one('actorId');
    this.resourceType.value = one('resourceType');
    this.resourceId.value = one('resourceId');
    this.projectId.value = one('projectId');
    this.ip.value = params.getAll('ipAddress').join(',');
    this.source.value = one('userAgentType');
    this.trace.value = one('traceId');
    this.metadata.value = [...params].filter(([k]) => k.startsWith('metadata.')).map(([k, v]) => `${k.slice(9)}=${v}`).join('\n');
    this.metadata.rows = Math.max(1, this.metadata.value.split('\n').length);
    this.fromIso = one('from');
    this.toIso = one('to');
    this.from.value = params.has('from') ? toLocalInput(one('from')) : '';
    this.to.value = params.has('to') ? toLocalInput(one('to')) : '';
    this.from.parentElement.title = params.has('from') ? one('from') : '';
    this.access.checked = one('includeAccess') === 'true';
    this.renderTypes();
  }

  // loadTypes fetches the event types with counts over the other filters.
  async loadTypes(params) {
    const q = filters(params);
    q.delete('eventType');
    try {
      const r = await request('/v1/event-types?' + q);
      this.counts = r.eventTypes;
    } catch { this.counts = []; }
    this.renderTypes();
  }

  renderTypes() {
    clear(this.types);
    const names = new Set([...this.counts.map((t) => t.eventType), ...this.selected]);
    for (const name of [...names]) {
      const c = this.counts.find((t) => t.eventType === name);
      const box = el('input', { type: 'checkbox', value: name, checked: this.selected.includes(name),
        onchange: () => {
          this.selected = [...this.types.querySelectorAll('input:checked')].map((x) => x.value);
          this.submit();
        } });
      this.types.append(el('label', { className: 'type' }, box, el('span', {}, name), el('span', { className: 'count' }, c ? c.count.toLocaleString() : '0')));
    }
  }

  submit() {
    const p = new URLSearchParams();
    for (const t of this.selected) p.append('eventType', t);
    const set = (k, v) => { if (v.trim()) p.set(k, v.trim()); };
    set(this.emailMode.value, this.email.value);
    set('actorType', this.actorType.value);
    set('actorId', this.actorId.value);
    set('resourceType', this.resourceType.value);
    set('resourceId', this.resourceId.value);
    set('projectId', this.projectId.value);
    set('ipAddress', this.ip.value.replace(/\s+/g, ''));
    set('userAgentType', this.source.value);
    set('traceId', this.trace.value);
    for (const line of this.metadata.value.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) p.append('metadata.' + line.slice(0, i).trim(), line.slice(i + 1));
    }
    // An unchanged field keeps its exact time (a histogram bar's bounds).
    const keep = (input, iso) => (input.value && iso && toLocalInput(iso) === input.value ? iso : fromLocalInput(input.value));
    set('from', keep(this.from, this.fromIso));
    set('to', keep(this.to, this.toIso));
    if (this.access.checked) p.set('includeAccess', 'true');
    this.toggleTypes(false);
    this.apply(p);
  }
}

