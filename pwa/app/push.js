/**
 * Web Push from the bot card's bell (docs/protocol.md, "Push"): ask for
 * notification permission only when the bell is pressed, subscribe with
 * the daemon's VAPID key (GET /v1/push/key), register the subscription for
 * the bot's `online` and `callback` events (POST /v1/push/subscriptions),
 * and undo it (DELETE). Bells that are on are kept in localStorage
 * (`botcall.push.v1`: agent id → subscription id) and renewed on each visit.
 */
const KEY = 'botcall.push.v1';
const EVENTS = ['online', 'callback'];

function load() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || '{}');
    return v && typeof v === 'object' ? v : {};
  } catch { return {}; }
}

function save(v) {
  try { localStorage.setItem(KEY, JSON.stringify(v)); } catch { /* private mode */ }
}

function b64(s) {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method, cache: 'no-store',
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  let j = null;
  try { j = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const e = new Error((j && j.error) || `HTTP ${res.status}`);
    e.code = (j && j.code) || `http_${res.status}`;
    throw e;
  }
  return j;
}

/** Our subscription id for `agent` when its bell is on (sent with calls). */
export function callbackId(agent) {
  return pushState(agent) === 'on' ? load()[agent] : null;
}

/** `unsupported`, `blocked`, `on` or `off` for `agent`. */
export function pushState(agent) {
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return 'unsupported';
  if (Notification.permission === 'denied') return 'blocked';
  return load()[agent] && Notification.permission === 'granted' ? 'on' : 'off';
}

/** This browser's push subscription, made with the daemon's current key. */
async function subscription() {
  const { public_key: key } = await api('GET', '/v1/push/key');
  const reg = await navigator.serviceWorker.ready;
  let sub = await reg.pushManager.getSubscription();
  const old = sub && sub.options && sub.options.applicationServerKey;
  if (sub && old && btoa(String.fromCharCode(...new Uint8Array(old))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') !== key) {
    await sub.unsubscribe();
    sub = null;
  }
  return sub || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: b64(key) });
}

/** Bell pressed: turns notifications for `agent` on (asking permission) or off. */
export async function toggle(agent) {
  const subs = load();
  if (subs[agent]) {
    delete subs[agent];
    save(subs);
    const reg = await navigator.serviceWorker.ready;
    const sub = await reg.pushManager.getSubscription();
    if (sub) {
      await api('DELETE', '/v1/push/subscriptions', { agent_id: agent, endpoint: sub.endpoint }).catch(() => {});
      if (!Object.keys(subs).length) await sub.unsubscribe().catch(() => {});
    }
    return 'off';
  }
  if ((await Notification.requestPermission()) !== 'granted') return pushState(agent);
  const sub = await subscription();
  const r = await api('POST', '/v1/push/subscriptions', { agent_id: agent, subscription: sub.toJSON(), events: EVENTS });
  subs[agent] = r.id;
  save(subs);
  return 'on';
}

/** Renews every bell that is on (subscriptions lapse after 30 days unused). */
export async function renew() {
  const subs = load();
  if (!Object.keys(subs).length || pushState('') === 'unsupported' || Notification.permission !== 'granted') return;
  try {
    const sub = (await subscription()).toJSON();
    for (const agent of Object.keys(subs)) {
      const r = await api('POST', '/v1/push/subscriptions', { agent_id: agent, subscription: sub, events: EVENTS })
        .catch((e) => (e.code === 'unknown_agent' ? null : { id: subs[agent] }));
      if (r) subs[agent] = r.id; else delete subs[agent];
    }
    save(subs);
  } catch { /* offline, or push is off on this daemon: try next visit */ }
}
