// Export of exactly the current filter, with progress. The credential goes
// in the Authorization header of a fetch, never in a URL; the bytes are
// collected into a Blob and saved from it.
import { el, fmtBytes } from './dom.js';
import { request } from './api.js';
import { filters } from './state.js';

export function exportControls(getParams) {
  const format = el('select', { id: 'export-format', 'aria-label': 'Export format' },
    ['parquet', 'csv', 'ndjson'].map((f) => el('option', { value: f }, f === 'ndjson' ? 'NDJSON' : f === 'csv' ? 'CSV' : 'Parquet')));
  const status = el('span', { className: 'progress', id: 'export-status', role: 'status' });
  const cancel = el('button', { type: 'button', id: 'export-cancel', hidden: true }, 'Cancel');
  let ctl = null;
  cancel.addEventListener('click', () => ctl && ctl.abort());
  const button = el('button', { type: 'button', id: 'export', onclick: async () => {
    const q = filters(getParams());
    q.set('format', format.value);
    ctl = new AbortController();
    button.disabled = true; cancel.hidden = false;
    status.textContent = 'Exporting…';
    try {
      const res = await request('/v1/export?' + q, { raw: true, signal: ctl.signal });
      const name = (/filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '') || [])[1] || `export.${format.value}`;
      const reader = res.body.getReader();
      const chunks = [];
      let n = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value); n += value.length;
        status.textContent = `Exporting… ${fmtBytes(n)} received`;
      }
      const blob = new Blob(chunks, { type: res.headers.get('Content-Type') || 'application/octet-stream' });
      const url = URL.createObjectURL(blob);
      const a = el('a', { href: url, download: name, hidden: true });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60e3);
      status.textContent = `Saved ${name} (${fmtBytes(n)})`;
      status.dataset.bytes = String(n);
      status.dataset.name = name;
    } catch (e) {
      status.textContent = e.name === 'AbortError' ? 'Export cancelled' : `Export failed: ${e.message}`;
    } finally { button.disabled = false; cancel.hidden = true; ctl = null; }
  } }, 'Export');
  return el('div', { className: 'export' }, format, button, cancel, status);
}
