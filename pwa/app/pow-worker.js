/**
 * Proof-of-work solver for the BotCall human check (docs/protocol.md,
 * "Human check: proof of work"): find a nonce of [A-Za-z0-9] characters such
 * that SHA-256(challenge + ":" + nonce) starts with `difficulty` zero bits.
 *
 * Runs as a module Web Worker (started by pow.js) and is also an importable
 * module (pow.js' main-thread fallback, node unit tests). crypto.subtle is
 * async and far too slow per hash, so this carries a small synchronous
 * SHA-256 that keeps the midstate of the fixed prefix.
 *
 * Worker messages in:  {challenge, difficulty}
 * Worker messages out: {type:'progress', tried, expected}
 *                      {type:'done', nonce, tried}
 *                      {type:'error', message}
 */

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const IV = new Int32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);
const W = new Int32Array(64);

/** SHA-256 compression of the 64-byte block at `off` in `m` into state `h`. */
function compress(h, m, off) {
  const w = W;
  for (let i = 0; i < 16; i++, off += 4) {
    w[i] = (m[off] << 24) | (m[off + 1] << 16) | (m[off + 2] << 8) | m[off + 3];
  }
  for (let i = 16; i < 64; i++) {
    const x = w[i - 15], y = w[i - 2];
    const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
    const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
    w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
  }
  let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
  for (let i = 0; i < 64; i++) {
    const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
    const t1 = (k + S1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
    const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
    const t2 = (S0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
  }
  h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
  h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + k) | 0;
}

/** `len` message bytes followed by SHA-256 padding, in whole 64-byte blocks. */
function pad(bytes) {
  const len = bytes.length;
  const out = new Uint8Array((((len + 8) >> 6) + 1) << 6);
  out.set(bytes);
  out[len] = 0x80;
  const bits = len * 8;
  const dv = new DataView(out.buffer);
  dv.setUint32(out.length - 8, Math.floor(bits / 0x100000000));
  dv.setUint32(out.length - 4, bits >>> 0);
  return out;
}

/** SHA-256 of a Uint8Array (or a string, UTF-8 encoded); returns 32 bytes. */
export function sha256(input) {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  const m = pad(bytes);
  const h = Int32Array.from(IV);
  for (let off = 0; off < m.length; off += 64) compress(h, m, off);
  const out = new Uint8Array(32);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) dv.setInt32(i * 4, h[i]);
  return out;
}

/** Number of leading zero bits of a 32-byte digest. */
export function leadingZeroBits(digest) {
  let n = 0;
  for (const byte of digest) {
    if (byte === 0) { n += 8; continue; }
    return n + Math.clz32(byte) - 24;
  }
  return n;
}

/** True when state words `h` start with `bits` zero bits. */
function hasZeroBits(h, bits) {
  let i = 0;
  for (; bits >= 32; bits -= 32, i++) if (h[i] !== 0) return false;
  return bits === 0 || Math.clz32(h[i]) >= bits;
}

export const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ALPHA = new TextEncoder().encode(ALPHABET);
const NEXT = new Uint8Array(256); // char code -> next char code (0 = wrap)
for (let i = 0; i < ALPHA.length - 1; i++) NEXT[ALPHA[i]] = ALPHA[i + 1];

/**
 * Incremental solver: `step(n)` tries up to n nonces and returns the nonce
 * string when found (else null). `tried` counts hashes so far. Nonces are
 * `nonceLength` characters (1..32), counted like an odometer from `start`.
 */
export function createSolver(challenge, difficulty, { nonceLength = 10, start } = {}) {
  if (typeof challenge !== 'string' || !challenge) throw new Error('bad challenge');
  if (!Number.isInteger(difficulty) || difficulty < 0 || difficulty > 256) throw new Error('bad difficulty');
  if (nonceLength < 1 || nonceLength > 32) throw new Error('bad nonce length');
  const prefix = new TextEncoder().encode(challenge + ':');
  const nonce = new Uint8Array(nonceLength);
  for (let i = 0; i < nonceLength; i++) {
    nonce[i] = start ? start.charCodeAt(i) : ALPHA[0];
    if (!ALPHABET.includes(String.fromCharCode(nonce[i]))) throw new Error('bad start nonce');
  }
  const m = pad(Uint8Array.from([...prefix, ...nonce]));
  const pos = prefix.length; // nonce offset in m
  const first = pos >> 6; // first block the nonce touches
  const mid = Int32Array.from(IV);
  for (let b = 0; b < first; b++) compress(mid, m, b * 64);
  const h = new Int32Array(8);
  const nBlocks = m.length >> 6;
  let exhausted = false;
  const solver = {
    tried: 0,
    step(n) {
      for (let t = 0; t < n && !exhausted; t++) {
        h.set(mid);
        for (let b = first; b < nBlocks; b++) compress(h, m, b * 64);
        solver.tried++;
        if (hasZeroBits(h, difficulty)) {
          const found = String.fromCharCode(...m.subarray(pos, pos + nonceLength));
          advance();
          return found;
        }
        advance();
      }
      if (exhausted) throw new Error('nonce space exhausted');
      return null;
    },
  };
  function advance() {
    for (let i = pos + nonceLength - 1; i >= pos; i--) {
      const nx = NEXT[m[i]];
      if (nx) { m[i] = nx; return; }
      m[i] = ALPHA[0];
    }
    exhausted = true;
  }
  return solver;
}

/** Synchronous solve (tests, tiny difficulties): returns {nonce, tried}. */
export function solve(challenge, difficulty, opts) {
  const s = createSolver(challenge, difficulty, opts);
  for (;;) {
    const nonce = s.step(65536);
    if (nonce) return { nonce, tried: s.tried };
  }
}

/** Random start nonce so two solvers never walk the same sequence. */
export function randomStart(len = 10) {
  const r = new Uint8Array(len);
  globalThis.crypto.getRandomValues(r);
  return Array.from(r, (x) => ALPHABET[x % 62]).join('');
}

// Worker entry point (inert when imported as a module in a window or node).
if (typeof WorkerGlobalScope !== 'undefined' && globalThis instanceof WorkerGlobalScope) {
  globalThis.onmessage = ({ data }) => {
    try {
      const s = createSolver(data.challenge, data.difficulty, { start: randomStart() });
      const expected = 2 ** data.difficulty;
      for (;;) {
        const nonce = s.step(16384);
        if (nonce) { postMessage({ type: 'done', nonce, tried: s.tried }); return; }
        postMessage({ type: 'progress', tried: s.tried, expected });
      }
    } catch (e) {
      postMessage({ type: 'error', message: String(e && e.message || e) });
    }
  };
}
