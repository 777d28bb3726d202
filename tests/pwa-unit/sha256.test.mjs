// The synchronous SHA-256 inside pwa/app/pow-worker.js against node:crypto.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { load } from './_load.mjs';

const { sha256, leadingZeroBits } = await load('pow-worker.js');
const ref = (b) => createHash('sha256').update(b).digest('hex');
const hex = (b) => Buffer.from(b).toString('hex');

test('known vectors', () => {
  assert.equal(hex(sha256('')), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(hex(sha256('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(hex(sha256('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  assert.equal(hex(sha256('a'.repeat(1000000))), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

test('UTF-8 strings are hashed as UTF-8', () => {
  assert.equal(hex(sha256('héllo ☎ 🤖')), ref(Buffer.from('héllo ☎ 🤖', 'utf8')));
});

test('every length across block boundaries (0..200 bytes)', () => {
  for (let len = 0; len <= 200; len++) {
    const b = randomBytes(len);
    assert.equal(hex(sha256(new Uint8Array(b))), ref(b), `length ${len}`);
  }
});

test('1000 random inputs', () => {
  for (let i = 0; i < 1000; i++) {
    const b = randomBytes(randomInt(0, 600));
    assert.equal(hex(sha256(new Uint8Array(b))), ref(b));
  }
});

test('leadingZeroBits', () => {
  const d = new Uint8Array(32);
  assert.equal(leadingZeroBits(d), 256);
  d[0] = 0x80; assert.equal(leadingZeroBits(d), 0);
  d[0] = 0x01; assert.equal(leadingZeroBits(d), 7);
  d[0] = 0; d[1] = 0x10; assert.equal(leadingZeroBits(d), 11);
  d[1] = 0; d[2] = 0x3f; assert.equal(leadingZeroBits(d), 18);
});
