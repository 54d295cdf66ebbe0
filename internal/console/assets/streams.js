// The streams page (admin keys): state, lag and last error of each of the
// org's streams; create, edit, pause and test.
import { el, clear, timeCell } from './dom.js';
import { request } from './api.js';

const PROVIDERS = ['datadog', 'splunk', 'cribl', 'azure', 'custom'];
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

export class StreamsPage {
  constructor(node) {
    this.node = node;
    this.table = el('table', { className: 'streams', id: 'streams-table' });
    this.msg = el('p', { className: 'status', id: 'streams-msg', role: 'status' });
    this.formBox = el('div', { id: 'stream-form-box' });
    node.append(el('h1', {}, 'Streams'),
      el('div', { className: 'toolbar' }, el('button', { type: 'button', id: 'stream-new', onclick: () => this.edit(null) }, 'New stream'),
        el('button', { type: 'button', id: 'streams-refresh', onclick: () => this.show() }, 'Refresh')),
      this.msg, this.formBox, el('div', { className: 'scroll' }, this.table));
  }

  async show() {
    try {
      const r = await request('/v1/streams');
      const full = await Promise.all(r.streams.map((s) => request('/v1/streams/' + encodeURIComponent(s.id)).catch(() => s)));
      this.draw(full);
    } catch (e) { this.msg.textContent = e.message; }
  }

  draw(streams) {
    clear(this.table).append(el('thead', {}, el('tr', {}, ['Name', 'Provider', 'State', 'Lag', 'Delivered', 'Last error', ''].map((h) => el('th', { scope: 'col' }, h)))));
    const body = el('tbody');
    for (const s of streams) {
      const st = s.status || {};
      body.append(el('tr', { dataset: { id: s.id } },
        el('td', {}, s.name), el('td', {}, s.provider),
        el('td', {}, el('span', { className: 'state state-' + (st.state || (s.paused ? 'paused' : 'unknown')) }, st.state || (s.paused ? 'paused' : '—'))),
        el('td', {}, st.lagEvents !== undefined ? `${st.lagEvents} events, ${Math.round(st.lagSeconds || 0)} s` : '—'),
        el('td', {}, st.delivered !== undefined ? `${st.delivered} (${st.failed} failed)` : '—'),
        el('td', { className: 'lasterror' }, st.lastError ? [st.lastError, ' ', st.lastErrorAt ? timeCell(st.lastErrorAt) : ''] : '—'),
        el('td', { className: 'actions' },
          el('button', { type: 'button', className: 'pause', onclick: () => this.act(() => request('/v1/streams/' + encodeURIComponent(s.id), { method: 'PATCH', body: { paused: !s.paused } }), s.paused ? 'Resumed' : 'Paused') }, s.paused ? 'Resume' : 'Pause'),
          el('button', { type: 'button', className: 'test', onclick: () => this.test(s) }, 'Test'),
          el('button', { type: 'button', className: 'edit', onclick: () => this.edit(s) }, 'Edit'))));
    }
    if (!streams.length) body.append(el('tr', {}, el('td', { colSpan: 7, className: 'empty' }, 'No streams yet.')));
    this.table.append(body);
  }

  async act(fn, done) {
    try { await fn(); this.msg.textContent = done; await this.show(); } catch (e) { this.msg.textContent = e.message; }
  }

  async test(s) {
    this.msg.textContent = `Testing ${s.name}…`;
    try {
      const r = await request(`/v1/streams/${encodeURIComponent(s.id)}/test`, { method: 'POST' });
      this.msg.textContent = r.ok ? `Test delivered (HTTP ${r.status}, ${r.durationMs} ms)` : `Test failed: ${r.error || 'HTTP ' + r.status}`;
    } catch (e) { this.msg.textContent = e.message; }
  }

  edit(s) {
    const name = el('input', { id: 'stream-name', value: s ? s.name : '', required: true });
    const provider = el('select', { id: 'stream-provider', disabled: !!s }, PROVIDERS.map((p) => el('option', { value: p, selected: s && s.provider === p }, p)));
    const config = el('textarea', { id: 'stream-config', rows: 5, spellcheck: false, value: JSON.stringify(s ? s.config : { url: 'https://' }, null, 2) });
    const types = el('input', { id: 'stream-types', value: s ? (s.filter.eventTypes || []).join(', ') : '' });
    const actors = el('input', { id: 'stream-actors', value: s ? (s.filter.actorTypes || []).join(', ') : '' });
    const err = el('p', { className: 'error', role: 'alert' });
    const form = el('form', { className: 'stream-form', id: 'stream-form', onsubmit: async (e) => {
      e.preventDefault();
      let cfg;
      try { cfg = JSON.parse(config.value); } catch { err.textContent = 'Config must be JSON'; return; }
      const body = { name: name.value, config: cfg, filter: { eventTypes: list(types.value), actorTypes: list(actors.value) } };
      try {
        if (s) await request('/v1/streams/' + encodeURIComponent(s.id), { method: 'PATCH', body });
        else await request('/v1/streams', { method: 'POST', body: { ...body, provider: provider.value } });
        clear(this.formBox);
        this.msg.textContent = s ? 'Saved' : 'Created';
        await this.show();
      } catch (x) { err.textContent = x.message; }
    } },
    el('h2', {}, s ? `Edit ${s.name}` : 'New stream'),
    el('label', { className: 'field' }, el('span', {}, 'Name'), name),
    el('label', { className: 'field' }, el('span', {}, 'Provider'), provider),
    el('label', { className: 'field wide' }, el('span', {}, 'Config (JSON; masked credentials sent back keep their value)'), config),
    el('label', { className: 'field' }, el('span', {}, 'Event types (comma-separated; empty: all)'), types),
    el('label', { className: 'field' }, el('span', {}, 'Actor types'), actors),
    el('div', { className: 'actions' }, el('button', { type: 'submit', className: 'primary', id: 'stream-save' }, s ? 'Save' : 'Create'),
      el('button', { type: 'button', onclick: () => clear(this.formBox) }, 'Cancel')), err);
    clear(this.formBox).append(form);
    name.focus();
  }
}
