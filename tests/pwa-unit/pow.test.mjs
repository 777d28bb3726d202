// Proof-of-work solver (pwa/app/pow-worker.js) and its UI wrapper
// (pwa/app/pow.js; in node there is no Worker, so its main-thread fallback
// runs) checked against node:crypto, as docs/protocol.md specifies:
// SHA-256(challenge + ":" + nonce) starts with `difficulty` zero bits,
// nonce = 1-32 characters of [A-Za-z0-9].
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { load } from './_load.mjs';

const { solve, createSolver, randomStart, ALPHABET } = await load('pow-worker.js');
const { solvePow } = await load('pow.js');

function zeroBits(challenge, nonce) {
  const d = createHash('sha256').update(`${challenge}:${nonce}`).digest();
  let n = 0;
  for (const b of d) { if (b === 0) { n += 8; continue; } return n + Math.clz32(b) - 24; }
  return n;
}
const challenge22 = () => randomBytes(16).toString('base64url'); // 22 chars, like the daemon's

test('alphabet is exactly [A-Za-z0-9]', () => {
  assert.equal(ALPHABET.length, 62);
  assert.match(ALPHABET, /^[A-Za-z0-9]+$/);
  assert.equal(new Set(ALPHABET).size, 62);
});

test('solutions verify with node:crypto for difficulties 0..16', () => {
  for (let d = 0; d <= 16; d++) {
    const c = challenge22();
    const { nonce, tried } = solve(c, d, { start: randomStart() });
    assert.match(nonce, /^[A-Za-z0-9]{1,32}$/);
    assert.ok(zeroBits(c, nonce) >= d, `difficulty ${d}: ${nonce}`);
    assert.ok(tried >= 1);
  }
});

test('the first qualifying nonce is found (no false negatives)', () => {
  const c = 'abcdefghijklmnopqrstuv';
  const s = createSolver(c, 8, { nonceLength: 3 });
  const nonce = s.step(1e6);
  // brute force the same odometer order with node:crypto
  let expect = null;
  outer: for (const a of ALPHABET) for (const b of ALPHABET) for (const x of ALPHABET) {
    if (zeroBits(c, a + b + x) >= 8) { expect = a + b + x; break outer; }
  }
  assert.equal(nonce, expect);
  assert.equal(s.tried, (ALPHABET.indexOf(expect[0]) * 62 + ALPHABET.indexOf(expect[1])) * 62 + ALPHABET.indexOf(expect[2]) + 1);
});

test('challenges of any length, nonce straddling block boundaries', () => {
  for (const len of [1, 40, 50, 54, 55, 56, 63, 64, 100, 130]) {
    const c = 'x'.repeat(len);
    for (const nonceLength of [1, 8, 32]) {
      const d = nonceLength === 1 ? 2 : 8; // 62 one-char nonces cannot promise more
      const { nonce } = solve(c, d, { nonceLength });
      assert.equal(nonce.length, nonceLength);
      assert.ok(zeroBits(c, nonce) >= d, `len ${len} nonce ${nonce}`);
    }
  }
});

test('an exhausted nonce space is reported, not looped over', () => {
  assert.throws(() => solve('abc', 40, { nonceLength: 1 }), /exhausted/);
});

test('bad input is refused', () => {
  assert.throws(() => createSolver('', 4));
  assert.throws(() => createSolver('abc', -1));
  assert.throws(() => createSolver('abc', 1.5));
  assert.throws(() => createSolver('abc', 4, { nonceLength: 33 }));
  assert.throws(() => createSolver('abc', 4, { start: 'ab!' , nonceLength: 3 }));
});

test('solvePow resolves the protocol proof object and reports progress', async () => {
  const c = challenge22();
  const seen = [];
  const proof = await solvePow({ method: 'pow', alg: 'sha256', challenge: c, difficulty: 14, expires_in: 300 },
    { onProgress: (f, tried, expected) => seen.push([f, tried, expected]) });
  assert.deepEqual(Object.keys(proof).sort(), ['challenge', 'method', 'nonce']);
  assert.equal(proof.method, 'pow');
  assert.equal(proof.challenge, c);
  assert.ok(zeroBits(c, proof.nonce) >= 14);
  assert.ok(seen.length >= 1);
  for (const [f, tried, expected] of seen) {
    assert.ok(f >= 0 && f <= 1);
    assert.equal(expected, 2 ** 14);
    assert.ok(tried > 0);
  }
});

test('solvePow rejects unsupported challenges and honours abort', async () => {
  await assert.rejects(solvePow({ method: 'webauthn' }), { code: 'unsupported_challenge' });
  await assert.rejects(solvePow({ method: 'pow', alg: 'sha1', challenge: 'x', difficulty: 4 }), { code: 'unsupported_challenge' });
  const ac = new AbortController();
  const p = solvePow({ method: 'pow', challenge: 'x', difficulty: 60 }, { signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(p, { code: 'aborted' });
});
