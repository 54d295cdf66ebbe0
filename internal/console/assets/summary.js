// Over the filtered set: events over time and the top actors, event types
// and IPs, from GET /v1/aggregates. Clicking narrows the filter.
import { el, svg, clear, utcTime, localTime } from './dom.js';
import { request } from './api.js';
import { filters } from './state.js';

const STEP = { minute: 60e3, hour: 3600e3, day: 86400e3 };
const MAX_BARS = 120;

// intervalFor picks a bucket width for a time range (null: unknown).
export function intervalFor(from, to) {
  if (!from) return 'hour';
  const span = (to ? new Date(to) : new Date()) - new Date(from);
  if (span <= 3 * 3600e3) return 'minute';
  if (span <= 5 * 86400e3) return 'hour';
  if (span <= 180 * 86400e3) return 'day';
  if (span <= 3 * 365 * 86400e3) return 'week';
  return 'month';
}

async function histogram(q) {
  const order = ['minute', 'hour', 'day', 'week', 'month'];
  let iv = intervalFor(q.get('from'), q.get('to'));
  for (;;) {
    try {
      const r = await request(`/v1/aggregates?${q}&interval=${iv}`);
      return { iv, groups: r.groups };
    } catch (e) {
      const next = order[order.indexOf(iv) + 1];
      if (e.code !== 'too_many_groups' || !next) throw e;
      iv = next;
    }
  }
}

// bars turns buckets into at most MAX_BARS bars [{start, end, count}],
// with empty buckets filled in for fixed-width intervals.
function bars(iv, groups) {
  let bs = groups.filter((g) => g.time).map((g) => ({ start: +new Date(g.time), count: g.count }))
    .sort((a, b) => a.start - b.start);
  if (!bs.length) return [];
  const step = STEP[iv];
  if (step) {
    const byStart = new Map(bs.map((b) => [b.start, b.count]));
    const lo = bs[0].start, hi = bs[bs.length - 1].start;
    const n = Math.floor((hi - lo) / step) + 1;
    const per = Math.ceil(n / MAX_BARS);
    bs = [];
    for (let t = lo; t <= hi; t += step * per) {
      let c = 0;
      for (let k = 0; k < per; k++) c += byStart.get(t + k * step) || 0;
      bs.push({ start: t, end: t + step * per, count: c });
    }
    return bs;
  }
  return bs.map((b, i) => {
    const d = new Date(b.start);
    const end = iv === 'week' ? b.start + 7 * 86400e3 : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    return { ...b, end: bs[i + 1] && bs[i + 1].start < end ? bs[i + 1].start : end };
  });
}

export async function renderSummary(node, params, narrow) {
  try { await summarize(node, params, narrow); } finally {
    document.body.dataset.summaries = String(+(document.body.dataset.summaries || 0) + 1);
  }
}

async function summarize(node, params, narrow) {
  const q = filters(params);
  clear(node).append(el('p', { className: 'muted' }, 'Loading summary…'));
  let hist, tops;
  try {
    [hist, ...tops] = await Promise.all([histogram(q),
      ...['actorEmail', 'eventType', 'ipAddress'].map((g) => request(`/v1/aggregates?${q}&groupBy=${g}&top=5`))]);
  } catch (e) {
    clear(node).append(el('p', { className: 'error' }, `Summary unavailable: ${e.message}`));
    return;
  }
  const bs = bars(hist.iv, hist.groups);
  const max = Math.max(1, ...bs.map((b) => b.count));
  const W = 600, H = 90, bw = bs.length ? W / bs.length : W;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H + 4}`, class: 'hist', role: 'img', 'aria-label': `Events per ${hist.iv}`, preserveAspectRatio: 'none' });
  bs.forEach((b, i) => {
    const h = Math.max(b.count ? 2 : 0, (b.count / max) * H);
    const from = new Date(b.start).toISOString(), to = new Date(b.end).toISOString();
    const r = svg('rect', { x: i * bw + 0.5, y: H - h, width: Math.max(1, bw - 1), height: h, class: 'bar', tabindex: 0,
      'data-from': from, 'data-to': to, 'data-count': b.count, role: 'button',
      'aria-label': `${b.count} events from ${localTime(from)}`,
      onclick: () => narrow({ from, to }), onkeydown: (e) => { if (e.key === 'Enter') narrow({ from, to }); } },
    svg('title', {}, `${b.count.toLocaleString()} events\n${utcTime(from)} – ${utcTime(to)}`));
    chart.append(r);
  });
  const top = (title, field, groups) => el('section', { className: 'top', id: 'top-' + field }, el('h3', {}, title),
    el('ol', {}, groups.filter((g) => !g.other && g[field] !== '').map((g) => el('li', {},
      el('button', { type: 'button', className: 'link', dataset: { value: g[field] }, onclick: () => narrow({ [field]: g[field] }) }, g[field]),
      el('span', { className: 'count' }, g.count.toLocaleString())))));
  const total = hist.groups.reduce((s, g) => s + g.count, 0);
  clear(node).append(
    el('section', { className: 'histogram', id: 'histogram' },
      el('h3', {}, `Events over time (per ${hist.iv}, ${total.toLocaleString()} in all)`),
      bs.length ? chart : el('p', { className: 'muted' }, 'No events.'),
      bs.length ? el('div', { className: 'axis' }, el('span', {}, localTime(new Date(bs[0].start).toISOString())),
        el('span', {}, localTime(new Date(bs[bs.length - 1].end).toISOString()))) : null),
    top('Top actors', 'actorEmail', tops[0].groups),
    top('Top event types', 'eventType', tops[1].groups),
    top('Top IPs', 'ipAddress', tops[2].groups));
}
