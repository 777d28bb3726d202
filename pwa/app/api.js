/**
 * HTTP API client (docs/protocol.md, "HTTP API"): GET /lookup/{id} and
 * GET /agents. Failures reject with an ApiError carrying the daemon's
 * `{code, error}` (plus `status`, `reason`, `retry_after` when given);
 * transport failures use code `network`, timeouts `timeout`.
 */

/** Same rule as botcall_core::id::validate: 1-64 of [A-Za-z0-9._-]. */
export function isValidId(id) {
  // "." and ".." are valid ids but cannot travel in a URL path segment.
  return typeof id === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(id) && id !== '.' && id !== '..';
}

export class ApiError extends Error {
  constructor({ code, error, status = 0, reason, retry_after }) {
    super(error || code);
    Object.assign(this, { code, error: error || code, status, reason, retry_after });
  }
}

async function getJson(path, timeoutMs = 10000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store', signal: ctl.signal });
  } catch (e) {
    throw e.name === 'AbortError'
      ? new ApiError({ code: 'timeout', error: 'The server took too long to answer.' })
      : new ApiError({ code: 'network', error: 'Could not reach the server. Check your connection.' });
  } finally {
    clearTimeout(timer);
  }
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const b = body && typeof body === 'object' ? body : {};
    throw new ApiError({
      code: typeof b.code === 'string' ? b.code : `http_${res.status}`,
      error: typeof b.error === 'string' ? b.error : `HTTP ${res.status}`,
      status: res.status,
      reason: b.reason,
      retry_after: b.retry_after ?? res.headers.get('Retry-After') ?? undefined,
    });
  }
  if (!body || typeof body !== 'object') {
    throw new ApiError({ code: 'bad_response', error: 'The server sent an unexpected answer.', status: res.status });
  }
  return body;
}

/** GET /lookup/{id} → {agent_id, name, online, capabilities, listed, max_calls, …}. */
export async function lookup(id) {
  if (!isValidId(id)) {
    throw new ApiError({ code: 'invalid_agent_id', error: 'Bot ids are 1–64 letters, digits, ".", "_" or "-".' });
  }
  return getJson(`/lookup/${encodeURIComponent(id)}`);
}

/** GET /agents (listed bots) → {agents: [...], next_cursor: string|null}. */
export async function listAgents({ online = true, limit = 50, cursor = null } = {}) {
  const q = new URLSearchParams({ limit: String(limit) });
  if (online) q.set('online', 'true');
  if (cursor) q.set('cursor', cursor);
  const body = await getJson(`/agents?${q}`);
  return {
    agents: Array.isArray(body.agents) ? body.agents.filter((a) => a && isValidId(a.agent_id)) : [],
    next_cursor: typeof body.next_cursor === 'string' && body.next_cursor ? body.next_cursor : null,
  };
}
