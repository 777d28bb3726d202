/**
 * The bot's answer_sig (docs/protocol.md), checked with WebCrypto before the
 * answer is applied; same checks and codes as botcall_core::answer_sig
 * (tests/pwa-unit runs both on one set of vectors). Key: the header's if its
 * RFC 7638 thumbprint is the bot id ('self'), else lookup's or the pin ('key').
 */
export const TYP = 'botcall-answer+jwt';
export const MAX_LIFETIME = 120;
export const LEEWAY = 60;
export const MAX_LEN = 2048;
const PINS = 'botcall.pins.v1';
const DIGEST = { 'sha-1': 20, 'sha-224': 28, 'sha-256': 32, 'sha-384': 48, 'sha-512': 64, md5: 16, md2: 16 };
const subtle = () => globalThis.crypto.subtle;
const enc = new TextEncoder();

/** Why an answer was refused, for people. */
export const REASONS = {
  missing: 'it is not signed by the bot',
  bot_fingerprint: 'its encryption fingerprint was changed on the way',
  caller_fingerprint: 'it was made for another caller',
  wrong_call: 'it was made for another call',
  expired: 'its signature has expired (a wrong clock here or at the bot?)',
  bad_time: 'its signature is not valid yet (a wrong clock here or at the bot?)',
  bad_signature: 'its signature does not match the bot’s key',
  untrusted_key: 'it is signed by a key that is not the bot’s',
};

export class SigError extends Error {
  constructor(code) { super(code); this.code = code; }
}
const fail = (code) => { throw new SigError(code); };
const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Strict unpadded base64url → bytes. */
export function b64d(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) fail('malformed');
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
  const out = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  if (b64e(out) !== s) fail('malformed');
  return out;
}

export function b64e(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function normalise(v) {
  const parts = v.trim().split(' ').filter(Boolean);
  if (parts.length !== 2) fail('sdp');
  const [hash, hex] = [parts[0].toLowerCase(), parts[1]];
  const pairs = hex.split(':');
  if (!/^[a-z0-9-]{1,10}$/.test(hash) || pairs.length < 2 || pairs.length > 64
    || !pairs.every((p) => /^[0-9A-Fa-f]{2}$/.test(p))) fail('sdp');
  if (DIGEST[hash] && DIGEST[hash] !== pairs.length) fail('sdp');
  return `${hash} ${hex.toUpperCase()}`;
}

/** An SDP's DTLS fingerprints {all, primary}, as botcall_core::sdp. */
export function fingerprints(sdp) {
  const all = [];
  for (const line of String(sdp).split(/[\r\n]/)) {
    if (!line.startsWith('a=fingerprint:')) continue;
    const v = line.slice(14);
    if (v.length > 202) fail('sdp');
    const fp = normalise(v);
    const hash = fp.split(' ')[0];
    const same = all.find((f) => f.split(' ')[0] === hash);
    if (same && same !== fp) fail('sdp');
    if (!same) all.push(fp);
    if (all.length > 8) fail('sdp');
  }
  const primary = all.find((f) => f.startsWith('sha-256 '));
  if (!primary) fail('sdp');
  return { all, primary };
}

const sameFp = (a, b) => { try { return normalise(a) === normalise(b); } catch { return false; } };

/** RFC 7638 thumbprint of an EC P-256 JWK, or null if it is not one. */
export async function thumbprint(jwk) {
  if (!isObj(jwk) || jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return null;
  const canon = `{"crv":"P-256","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
  if (!/^[A-Za-z0-9_-]{43}$/.test(jwk.x) || !/^[A-Za-z0-9_-]{43}$/.test(jwk.y)) return null;
  return b64e(new Uint8Array(await subtle().digest('SHA-256', enc.encode(canon))));
}

/** 43 base64url characters: an id only its key's holder can sign for. */
export const isThumbprintId = (id) => /^[A-Za-z0-9_-]{43}$/.test(id);

async function importKey(jwk) {
  if (jwk.use !== undefined && jwk.use !== 'sig') return null;
  if (jwk.alg !== undefined && jwk.alg !== 'ES256') return null;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return null;
  try {
    return await subtle().importKey('jwk', { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, ext: true },
      { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  } catch { return null; }
}

/** expect: {agentId, callId, offerSdp, answerSdp, key}; → {trust, jwk}, or throws SigError(code). */
export async function verify(token, expect, now) {
  if (typeof token !== 'string' || token.length > MAX_LEN) fail('malformed');
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !p)) fail('malformed');
  let header;
  try { header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(b64d(parts[0]))); } catch { fail('malformed'); }
  const payloadBytes = b64d(parts[1]);
  if (!isObj(header) || typeof header.alg !== 'string') fail('malformed');
  let trust = 'key';
  let jwk = expect.key || null;
  let key = null;
  if (isObj(header.jwk) && (await thumbprint(header.jwk)) === expect.agentId && (key = await importKey(header.jwk))) {
    trust = 'self';
    jwk = { kty: 'EC', crv: 'P-256', x: header.jwk.x, y: header.jwk.y };
  } else if (!jwk) {
    fail('untrusted_key');
  } else {
    key = await importKey(jwk);
    if (!key) fail('untrusted_key');
  }
  if (header.alg.toLowerCase() === 'none') fail('malformed');
  if (header.alg !== 'ES256') fail('bad_signature');
  if ('crit' in header || header.b64 === false) fail('malformed');
  const sig = b64d(parts[2]);
  if (sig.length !== 64) fail('bad_signature');
  const ok = await subtle().verify({ name: 'ECDSA', hash: 'SHA-256' }, key, sig, enc.encode(`${parts[0]}.${parts[1]}`));
  if (!ok) fail('bad_signature');
  if (header.typ !== TYP) fail('wrong_type');
  let c;
  try { c = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payloadBytes)); } catch { fail('malformed'); }
  if (!isObj(c)) fail('malformed');
  for (const k of ['exp', 'iat', 'nbf']) if (c[k] !== undefined && !Number.isInteger(c[k])) fail('malformed');
  if (c.exp === undefined) fail('malformed');
  if (now >= c.exp + LEEWAY) fail('expired');
  if (c.nbf !== undefined && now + LEEWAY < c.nbf) fail('bad_time');
  if (c.iat === undefined) fail('malformed');
  if (now + LEEWAY < c.iat || c.exp - c.iat > MAX_LIFETIME) fail('bad_time');
  if (typeof c.sub !== 'string') fail('malformed');
  if (c.sub !== expect.agentId) fail('wrong_type');
  if (c.call_id !== expect.callId) fail('wrong_call');
  const offer = fingerprints(expect.offerSdp);
  if (typeof c.fp !== 'string') fail('malformed');
  if (!sameFp(c.fp, offer.primary)) fail('caller_fingerprint');
  const answer = fingerprints(expect.answerSdp);
  const b = c.bfps;
  if (!Array.isArray(b) || !b.length || !b.every((f) => typeof f === 'string' && answer.all.some((a) => sameFp(f, a)))
    || !answer.all.every((a) => b.some((f) => sameFp(f, a)))) fail('bot_fingerprint');
  return { trust, jwk };
}

/** As verify(), plus 'missing' or {trust: 'none'} when unsigned. */
export async function check(token, expect, now) {
  if (token === undefined || token === null) {
    if (expect.key || isThumbprintId(expect.agentId)) fail('missing');
    return { trust: 'none', jwk: null };
  }
  return verify(token, expect, now);
}

/** TOFU pins (localStorage botcall.pins.v1): key(id, published) → {key, state: new|same|changed|pinned}. */
export function pins(storage = globalThis.localStorage ?? null) {
  const read = () => { try { const v = JSON.parse(storage?.getItem(PINS) ?? '{}'); return isObj(v) ? v : {}; } catch { return {}; } };
  const same = (a, b) => isObj(a) && isObj(b) && a.x === b.x && a.y === b.y;
  return {
    key(id, published) {
      const pinned = read()[id];
      const p = isObj(published) ? published : null;
      if (!isObj(pinned)) return { key: p, state: 'new' };
      if (!p) return { key: pinned, state: 'pinned' };
      return { key: p, state: same(pinned, p) ? 'same' : 'changed' };
    },
    pin(id, jwk) {
      if (!isObj(jwk)) return;
      const all = read();
      all[id] = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
      const ids = Object.keys(all);
      for (const old of ids.slice(0, Math.max(0, ids.length - 200))) delete all[old];
      try { storage?.setItem(PINS, JSON.stringify(all)); } catch { /* quota, private mode */ }
    },
  };
}
