// The console is a client of the public API: every call goes through
// request(), with the credential in the Authorization header.
const S = window.sessionStorage;
const KEY = 'auditstore.credential';
const SESSION = 'auditstore.readSession';
const KIND = 'auditstore.kind';
const SCOPE = 'auditstore.scope';
const CAPS = 'auditstore.capabilities';
const ROLE = 'auditstore.role';

export const auth = {
  get token() { return S.getItem(KEY); },
  get kind() { return S.getItem(KIND) || 'key'; },
  get session() { return S.getItem(SESSION); },
  // role is the key's role, as its read session's answer named it.
  get role() { return S.getItem(ROLE); },
  get scope() { try { return JSON.parse(S.getItem(SCOPE)) || {}; } catch { return {}; } },
  // canExport is false for a viewer session without the export capability.
  get canExport() { return this.kind !== 'viewer' || S.getItem(CAPS) === null || (S.getItem(CAPS) || '').split(',').includes('export'); },
  set(token, kind, scope, caps) {
    S.setItem(KEY, token); S.setItem(KIND, kind);
    if (scope) S.setItem(SCOPE, JSON.stringify(scope));
    if (caps) S.setItem(CAPS, caps.join(','));
  },
  setSession(s, role) { S.setItem(SESSION, s); if (role) S.setItem(ROLE, role); },
  clear() { for (const k of [KEY, SESSION, KIND, SCOPE, CAPS, ROLE]) S.removeItem(k); },
};

export class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// At most PARALLEL calls run at once: the server lets each org run only a
// few queries at once, and a page fires several (list, summary, types).
const PARALLEL = 4;
let running = 0;
const queue = [];
async function slot() {
  if (running < PARALLEL) { running++; return; }
  await new Promise((resolve) => queue.push(resolve));
}
function unslot() {
  const next = queue.shift();
  if (next) next(); else running--;
}

// A GET answered 429 is tried again after its Retry-After (at most 5 s),
// up to RETRIES times.
const RETRIES = 3;
function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });
}

async function call(path, method, headers, body, signal) {
  await slot();
  try {
    return await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  } finally { unslot(); }
}

// request calls the API and returns the decoded JSON (null for 204).
export async function request(path, { method = 'GET', body, raw = false, signal } = {}) {
  const headers = {};
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  if (auth.session) headers['Audit-Session'] = auth.session;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res = await call(path, method, headers, body, signal);
  for (let i = 0; res.status === 429 && method === 'GET' && i < RETRIES; i++) {
    const secs = Number.parseInt(res.headers.get('Retry-After'), 10);
    await pause(Math.min(5, Number.isFinite(secs) && secs > 0 ? secs : 1) * 1000, signal);
    res = await call(path, method, headers, body, signal);
  }
  if (!res.ok) {
    let code = 'http_' + res.status, msg = res.statusText || 'request failed';
    try { const e = (await res.json()).error; if (e) { code = e.code; msg = e.message; } } catch { /* not JSON */ }
    throw new APIError(res.status, code, msg);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

// exchangeViewerToken turns a one-time viewer token into a session.
export async function exchangeViewerToken(token) {
  const res = await fetch('/v1/viewer-sessions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token }), credentials: 'omit', cache: 'no-store',
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new APIError(res.status, body.error?.code, body.error?.message || 'the viewer token was refused');
  return body;
}
