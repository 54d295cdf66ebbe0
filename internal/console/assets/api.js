// The console is a client of the public API: every call goes through
// request(), with the credential in the Authorization header.
const S = window.sessionStorage;
const KEY = 'auditstore.credential';
const SESSION = 'auditstore.readSession';
const KIND = 'auditstore.kind';
const SCOPE = 'auditstore.scope';
const CAPS = 'auditstore.capabilities';

export const auth = {
  get token() { return S.getItem(KEY); },
  get kind() { return S.getItem(KIND) || 'key'; },
  get session() { return S.getItem(SESSION); },
  get scope() { try { return JSON.parse(S.getItem(SCOPE)) || {}; } catch { return {}; } },
  // canExport is false for a viewer session without the export capability.
  get canExport() { return this.kind !== 'viewer' || S.getItem(CAPS) === null || (S.getItem(CAPS) || '').split(',').includes('export'); },
  set(token, kind, scope, caps) {
    S.setItem(KEY, token); S.setItem(KIND, kind);
    if (scope) S.setItem(SCOPE, JSON.stringify(scope));
    if (caps) S.setItem(CAPS, caps.join(','));
  },
  setSession(s) { S.setItem(SESSION, s); },
  clear() { for (const k of [KEY, SESSION, KIND, SCOPE, CAPS]) S.removeItem(k); },
};

export class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// request calls the API and returns the decoded JSON (null for 204).
export async function request(path, { method = 'GET', body, raw = false, signal } = {}) {
  const headers = {};
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  if (auth.session) headers['Audit-Session'] = auth.session;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
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
