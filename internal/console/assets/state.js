// The view's state lives in the URL's fragment ("#/log?eventType=a&page=2"),
// so a link reopens the same view and Back works. The fragment's query is
// the API's own query string: filters pass through as they are.

export const FILTER_PARAMS = ['eventType', 'actorType', 'actorId', 'actorEmail', 'actorEmailPrefix',
  'actorEmailContains', 'resourceType', 'resourceId', 'projectId', 'ipAddress', 'userAgentType',
  'traceId', 'from', 'to', 'includeAccess'];
export const LIST_PARAMS = ['sort', 'order', 'page', 'cursor', 'limit'];

export function route() {
  const h = location.hash.replace(/^#/, '') || '/log';
  const i = h.indexOf('?');
  const path = i < 0 ? h : h.slice(0, i);
  const params = new URLSearchParams(i < 0 ? '' : h.slice(i + 1));
  return { path, params };
}

export function go(path, params) {
  const q = params && params.toString();
  const next = '#' + path + (q ? '?' + q : '');
  if (location.hash !== next) location.hash = next;
  else window.dispatchEvent(new HashChangeEvent('hashchange'));
}

// filters returns the filter parameters of params (metadata.* included).
export function filters(params) {
  const out = new URLSearchParams();
  for (const [k, v] of params) {
    if (FILTER_PARAMS.includes(k) || k.startsWith('metadata.')) out.append(k, v);
  }
  return out;
}

// with returns a copy of params with the given keys replaced (a null or
// empty value removes the key) and paging reset.
export function withFilter(params, changes, keepPage = false) {
  const out = new URLSearchParams(params);
  for (const [k, v] of Object.entries(changes)) {
    out.delete(k);
    for (const x of [].concat(v ?? [])) if (x !== '' && x !== null) out.append(k, x);
  }
  if (!keepPage) { out.delete('page'); out.delete('cursor'); }
  return out;
}
