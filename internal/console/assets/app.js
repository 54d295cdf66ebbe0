// The console's entry point: sign-in, routing between pages.
import { auth, request, exchangeViewerToken } from './api.js';
import { route } from './state.js';
import { LogPage } from './log.js';
import { StreamsPage } from './streams.js';
import { Drawer } from './drawer.js';

const $ = (id) => document.getElementById(id);
let log = null, streams = null, settingsFor = null;
const config = { traceUrl: '', maxOffset: 100000 };

// loadSettings reads the org's settings (its trace link-out) once per
// credential, as any key or viewer session of the org may.
async function loadSettings() {
  if (settingsFor === auth.token) return;
  settingsFor = auth.token;
  try { config.traceUrl = (await request('/v1/settings')).traceUrl || ''; } catch { config.traceUrl = ''; }
}

async function startSession() {
  // A read session records this console's reads once, not every poll.
  if (auth.kind !== 'key' || auth.session) return;
  try {
    const r = await request('/v1/read-sessions', { method: 'POST' });
    auth.setSession(r.session, r.role);
  } catch { /* reads are then recorded one by one */ }
}

async function render() {
  const { path, params } = route();
  const signedIn = !!auth.token;
  $('signin').hidden = signedIn;
  $('nav').hidden = !signedIn;
  $('signout').hidden = !signedIn;
  $('log').hidden = !signedIn || path !== '/log';
  $('streams').hidden = !signedIn || path !== '/streams';
  if (!signedIn) { $('key').focus(); return; }
  await loadSettings();
  const scope = Object.entries(auth.scope).map(([k, v]) => `${k}=${v}`).join(', ');
  $('who').textContent = auth.kind === 'viewer' ? `Viewer session${scope ? ' · limited to ' + scope : ''}` : 'API key';
  for (const a of document.querySelectorAll('#nav a')) a.setAttribute('aria-current', a.getAttribute('href') === '#' + path ? 'page' : 'false');
  if (!log) log = new LogPage($('log'), new Drawer($('drawer'), config), config);
  if (path === '/streams') {
    log.hide();
    if (!streams) streams = new StreamsPage($('streams'));
    await streams.show();
  } else {
    await log.show(params);
  }
  document.body.dataset.ready = path;
}

// detectAdmin shows Streams to an admin key: its read session named its
// role (listing the streams to find out would be recorded as a read of the
// org's configuration, stream.list, at every sign-in).
async function detectAdmin() {
  if (auth.kind !== 'key') return;
  if (auth.role) { $('nav-streams').hidden = auth.role !== 'admin'; return; }
  try { await request('/v1/streams'); $('nav-streams').hidden = false; } catch { $('nav-streams').hidden = true; }
}

async function main() {
  try { Object.assign(config, await (await fetch('/console-config.json', { cache: 'no-store' })).json()); } catch { /* defaults */ }
  // An embedding page passes a one-time viewer token in the fragment
  // (#viewer-token=...): it is exchanged for a session at once and removed
  // from the address.
  const m = /^#viewer-token=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (m) {
    history.replaceState(null, '', location.pathname + location.search + '#/log');
    auth.clear();
    try {
      const s = await exchangeViewerToken(m[1]);
      auth.set(s.session, 'viewer', s.filters || {}, s.capabilities || []);
    } catch (e) {
      $('signin-error').textContent = `Viewer sign-in failed: ${e.message}`;
    }
  }
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const key = $('key').value.trim();
    auth.set(key, 'key');
    try {
      // Opening the read session checks the key too.
      const r = await request('/v1/read-sessions', { method: 'POST' });
      auth.setSession(r.session, r.role);
    } catch (x) {
      auth.clear();
      $('signin-error').textContent = x.status === 401 || x.status === 403 ? 'This key was refused: use a read or admin key.' : x.message;
      return;
    }
    $('key').value = '';
    $('signin-error').textContent = '';
    await detectAdmin();
    await render();
  });
  $('signout').addEventListener('click', () => { auth.clear(); location.hash = '#/log'; location.reload(); });
  window.addEventListener('hashchange', () => render());
  if (auth.token) { await startSession(); await detectAdmin(); }
  await render();
}

main();
