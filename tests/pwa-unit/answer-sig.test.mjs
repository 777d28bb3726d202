// The PWA's answer-signature verifier (pwa/app/answer-sig.js, WebCrypto)
// against the vectors the Rust verifier (botcall_core::answer_sig) is held
// to in tests/answer_sig.rs: both must give every vector the same verdict.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { load } from './_load.mjs';

const { check, pins, fingerprints, thumbprint, isThumbprintId } = await load('answer-sig.js');
const { vectors } = JSON.parse(readFileSync(new URL('./answer-sig-vectors.json', import.meta.url)));

async function verdict(v) {
  try {
    const r = await check(v.token, { agentId: v.agent_id, callId: v.call_id, offerSdp: v.offer, answerSdp: v.answer, key: v.key }, v.now);
    return `ok:${r.trust}`;
  } catch (e) {
    assert.ok(e.code, `${v.name}: threw ${e}`);
    return e.code;
  }
}

test('every vector gets the Rust verdict', async () => {
  assert.ok(vectors.length >= 12);
  for (const v of vectors) assert.equal(await verdict(v), v.want, v.name);
});

test('the self-certifying id is the RFC 7638 thumbprint of the signing key', async () => {
  const v = vectors.find((x) => x.want === 'ok:self');
  const header = JSON.parse(Buffer.from(v.token.split('.')[0], 'base64url'));
  assert.equal(header.typ, 'botcall-answer+jwt');
  assert.equal(await thumbprint(header.jwk), v.agent_id);
  assert.ok(isThumbprintId(v.agent_id));
  assert.ok(!isThumbprintId('ec-bot'));
});

test('fingerprints are read as botcall_core::sdp reads them', () => {
  const f = fingerprints('v=0\r\na=fingerprint:SHA-256 ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89\r\n');
  assert.equal(f.primary, 'sha-256 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89');
  for (const bad of ['v=0\r\n', 'a=fingerprint:sha-256 AB:CD\r\n', 'a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99\r\n']) {
    assert.throws(() => fingerprints(bad), (e) => e.code === 'sdp', bad);
  }
});

test('pins: trust on first use, then warn when the published key changes', () => {
  const m = new Map();
  const st = { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
  const a = { kty: 'EC', crv: 'P-256', x: 'a'.repeat(43), y: 'b'.repeat(43) };
  const b = { ...a, x: 'c'.repeat(43) };
  const p = pins(st);
  assert.deepEqual(p.key('ec-bot', a), { key: a, state: 'new' });
  p.pin('ec-bot', a);
  assert.equal(pins(st).key('ec-bot', a).state, 'same');
  assert.deepEqual(pins(st).key('ec-bot', b), { key: b, state: 'changed' });
  // A server that stops publishing the key cannot downgrade a pinned bot.
  assert.equal(pins(st).key('ec-bot', null).state, 'pinned');
  assert.equal(pins(st).key('ec-bot', null).key.x, a.x);
  // Corrupt storage reads as no pins.
  m.set('botcall.pins.v1', '{nope');
  assert.equal(pins(st).key('ec-bot', a).state, 'new');
});
