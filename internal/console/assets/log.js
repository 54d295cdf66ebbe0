// The audit log page: filter bar, summary, table, paging, live updates.
import { el } from './dom.js';
import { request, auth } from './api.js';
import { go, filters, withFilter } from './state.js';
import { FilterBar } from './filters.js';
import { renderTable, loadColumns, saveColumns, columnChooser } from './table.js';
import { renderSummary } from './summary.js';
import { exportControls } from './export.js';

const LIVE_MS = 5000;
const CURSORS = 'auditstore.cursors';

export class LogPage {
  // config.maxOffset is how deep the API's page mode reaches; deeper pages
  // follow its cursor.
  constructor(node, drawer, config) {
    this.maxOffset = config.maxOffset ?? 100000;
    this.node = node;
    this.drawer = drawer;
    this.params = new URLSearchParams();
    this.columns = loadColumns();
    this.bar = new FilterBar((p) => this.navigate(p));
    this.summary = el('div', { className: 'summary', id: 'summary' });
    this.table = el('table', { className: 'events', id: 'events' });
    this.status = el('p', { className: 'pageinfo', id: 'pageinfo', role: 'status' });
    this.prev = el('button', { type: 'button', id: 'prev', onclick: () => this.page(-1) }, '← Previous');
    this.next = el('button', { type: 'button', id: 'next', onclick: () => this.page(1) }, 'Next →');
    this.error = el('p', { className: 'error', id: 'log-error', role: 'alert' });
    this.live = el('input', { type: 'checkbox', id: 'live', checked: true, onchange: () => this.schedule() });
    this.banner = el('button', { type: 'button', id: 'live-banner', className: 'banner', hidden: true,
      onclick: () => { window.scrollTo(0, 0); this.poll(); } });
    this.limit = el('select', { id: 'limit', 'aria-label': 'Events per page', onchange: () => this.navigate(withFilter(this.params, { limit: this.limit.value })) },
      [25, 50, 100, 200].map((n) => el('option', { value: n }, `${n} per page`)));
    this.chooser = el('details', { className: 'chooser' }, el('summary', { id: 'columns-button' }, 'Columns'),
      columnChooser(this.columns, (ids) => { saveColumns(ids); this.draw(); }));
    node.append(
      el('h1', {}, 'Audit log'),
      this.bar.form,
      this.summary,
      el('div', { className: 'toolbar' },
        el('label', { className: 'check' }, this.live, 'Live'), this.banner,
        auth.canExport ? exportControls(() => this.params) : null, this.chooser, this.limit),
      this.error,
      el('div', { className: 'scroll' }, this.table),
      el('nav', { className: 'pager', 'aria-label': 'Pages' }, this.prev, this.status, this.next));
    window.addEventListener('scroll', () => { if (window.scrollY < 50 && this.pending) this.poll(); }, { passive: true });
  }

  navigate(p) { go('/log', p); }

  narrow(changes) {
    this.navigate(withFilter(this.params, changes));
  }

  // show renders the view of the URL's parameters.
  async show(params) {
    const key = filters(params).toString();
    const changed = key !== filters(this.params).toString();
    this.params = params;
    this.bar.show(params);
    this.limit.value = params.get('limit') || '50';
    const summarize = changed || !this.loadedOnce;
    this.loadedOnce = true;
    // The page first, alone: the event-type counts, the histogram and the
    // top lists each scan the whole filtered set, and started beside the
    // page they took the server's cores from it (on 10M events of one
    // org, the first row came after ~2 s).
    await this.load();
    if (summarize && this.params === params) {
      this.bar.loadTypes(params);
      renderSummary(this.summary, params, (c) => this.narrow(c));
    }
  }

  query(p = this.params) {
    const q = filters(p);
    for (const k of ['sort', 'order', 'limit']) if (p.get(k)) q.set(k, p.get(k));
    if (p.get('cursor')) q.set('cursor', p.get('cursor'));
    else if (p.get('page')) q.set('page', p.get('page'));
    return q;
  }

  async load() {
    this.error.textContent = '';
    this.node.setAttribute('aria-busy', 'true');
    try {
      // The newest page comes without its total (total=false): over a
      // large range the total is most of the page's time, so the rows are
      // drawn first and "Page X of Y" follows from the count.
      const q = this.query();
      if (this.livePage()) q.set('total', 'false');
      const res = await request('/v1/events?' + q);
      this.res = res;
      this.events = res.events;
      this.fresh = new Set();
      if (res.total === null) {
        this.draw();
        await this.countTotal();
      }
      this.draw();
    } catch (e) {
      this.error.textContent = e.message;
      this.events = [];
      this.res = null;
      this.draw();
    } finally {
      this.node.removeAttribute('aria-busy');
      // A counter of finished loads: tests and scripts wait on it.
      document.body.dataset.loads = String(+(document.body.dataset.loads || 0) + 1);
      this.schedule();
    }
  }

  // countTotal fills in the totals (cursor mode, the newest page) from the
  // aggregates.
  async countTotal() {
    const r = await request('/v1/aggregates?' + filters(this.params));
    const total = r.groups.reduce((s, g) => s + g.count, 0);
    const limit = +(this.params.get('limit') || 50);
    this.res.total = total;
    this.res.pages = Math.ceil(total / limit);
    this.res.page = +(this.params.get('page') || 1);
  }

  draw() {
    const p = this.params;
    const sort = p.get('sort') || 'timestamp';
    const order = p.get('order') || (sort === 'timestamp' ? 'desc' : 'asc');
    renderTable(this.table, this.events || [], {
      columns: this.columns, sort, order, fresh: this.fresh,
      onSort: (s) => {
        const o = s === sort ? (order === 'asc' ? 'desc' : 'asc') : (s === 'timestamp' ? 'desc' : 'asc');
        this.navigate(withFilter(p, { sort: s, order: o }));
      },
      onOpen: (e) => this.drawer.open(e),
    });
    const r = this.res;
    if (r && r.total !== null) {
      this.status.textContent = r.total ? `Page ${r.page} of ${r.pages} (${r.total.toLocaleString()} total)` : 'No events (0 total)';
    } else this.status.textContent = '';
    this.prev.disabled = !r || (r.page || 1) <= 1;
    this.next.disabled = !r || !r.nextCursor;
  }

  cursorsFor() {
    try { return JSON.parse(sessionStorage.getItem(CURSORS)) || {}; } catch { return {}; }
  }

  page(d) {
    const p = this.params, r = this.res;
    const limit = +(p.get('limit') || 50);
    const n = (r?.page || 1) + d;
    if (n < 1) return;
    const key = this.query(withFilter(p, {})).toString();
    const all = this.cursorsFor();
    const mine = all[key] || {};
    let cursor = null;
    if ((n - 1) * limit > this.maxOffset) {
      cursor = d > 0 ? r.nextCursor : mine[n];
      if (!cursor) return;
      mine[n] = cursor;
      sessionStorage.setItem(CURSORS, JSON.stringify({ [key]: mine }));
    }
    this.navigate(withFilter(p, { page: String(n), cursor }, true));
    window.scrollTo(0, 0);
  }

  // Live: the first page sorted newest first is polled; new events go on
  // top. While the user reads further down, polling pauses and a banner
  // offers the new events.
  schedule() {
    clearTimeout(this.timer);
    if (this.live.checked && !this.node.hidden) this.timer = setTimeout(() => this.poll(), LIVE_MS);
  }

  livePage() {
    const p = this.params;
    return !p.get('cursor') && (+(p.get('page') || 1) === 1) && (p.get('sort') || 'timestamp') === 'timestamp' && (p.get('order') || 'desc') === 'desc';
  }

  async poll() {
    clearTimeout(this.timer);
    if (!this.live.checked || this.node.hidden || !this.livePage() || document.hidden) return this.schedule();
    try {
      const res = await request('/v1/events?' + this.query());
      const known = new Set((this.events || []).map((e) => e.id));
      const fresh = res.events.filter((e) => !known.has(e.id));
      if (fresh.length && window.scrollY > 200) {
        this.pending = fresh.length;
        this.banner.hidden = false;
        this.banner.textContent = `${fresh.length} new event${fresh.length > 1 ? 's' : ''} — paused while you read; show`;
      } else {
        this.pending = 0;
        this.banner.hidden = true;
        this.res = res; this.events = res.events; this.fresh = new Set(fresh.map((e) => e.id));
        this.draw();
      }
    } catch { /* keep the last view; the next poll retries */ }
    this.schedule();
  }

  hide() { clearTimeout(this.timer); }
}

