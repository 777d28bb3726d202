// HTTP client (pwa/app/api.js) with a stubbed fetch: URLs, id validation,
// and error mapping to {code, error}.
import test from 'node:test';
import assert from 'node:assert/strict';
import { load } from './_load.mjs';

const { lookup, listAgents, isValidId } = await load('api.js');

function stub(status, body, headers = {}) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push(url);
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status, headers });
  };
  return calls;
}

test('isValidId follows botcall_core::id::validate', () => {
  for (const ok of ['a', 'weather-bot', 'A.b_c-9', 'x'.repeat(64), 'Zk3p_3fQx1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuVwXy']) assert.ok(isValidId(ok), ok);
  for (const bad of ['', 'x'.repeat(65), 'a b', 'a/b', 'ä', '.', '..', null, 5]) assert.ok(!isValidId(bad), String(bad));
});

test('lookup success', async () => {
  const calls = stub(200, { agent_id: 'w', name: 'Weather', online: true });
  const a = await lookup('w');
  assert.equal(a.name, 'Weather');
  assert.equal(calls[0], '/lookup/w');
});

test('lookup errors carry code and error', async () => {
  stub(404, { error: 'no such agent', code: 'not_found' });
  await assert.rejects(lookup('nobody'), { code: 'not_found', error: 'no such agent', status: 404 });
  stub(429, { error: 'slow down', code: 'rate_limited' }, { 'Retry-After': '3' });
  await assert.rejects(lookup('x'), { code: 'rate_limited', retry_after: '3' });
  stub(502, '<html>bad gateway</html>');
  await assert.rejects(lookup('x'), { code: 'http_502' });
  globalThis.fetch = async () => { throw new TypeError('Failed to fetch'); };
  await assert.rejects(lookup('x'), { code: 'network' });
  await assert.rejects(lookup('bad id'), { code: 'invalid_agent_id' });
});

test('listAgents builds the query and normalises the page', async () => {
  const calls = stub(200, { agents: [{ agent_id: 'a' }, { agent_id: 'bad id' }, null], next_cursor: 'c2' });
  const page = await listAgents({ online: true, limit: 50, cursor: 'c1' });
  assert.equal(calls[0], '/agents?limit=50&online=true&cursor=c1');
  assert.deepEqual(page, { agents: [{ agent_id: 'a' }], next_cursor: 'c2' });
  stub(200, { agents: [], next_cursor: null });
  assert.deepEqual(await listAgents(), { agents: [], next_cursor: null });
});
