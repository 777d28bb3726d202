/**
 * BotCall PWA entry point: router, UI state machine and lists.
 *
 * Routes: "/", "/call/<id>" and "/#/call/<id>" (pre-fill the id and look it
 * up; nothing calls by itself). Query flag "?raw=1": getUserMedia with
 * echoCancellation, noiseSuppression and autoGainControl all off.
 *
 * TEST CONTRACT (stable; the Playwright end-to-end test relies on it)
 * data-testid:
 *   bot-id-input    the "Bot id" text field
 *   lookup-button   submits the lookup (GET /lookup/{id})
 *   bot-status      text is "online" or "offline" after a lookup
 *   call-button     starts a call (visible in states idle and ended)
 *   hangup-button   hangs up / cancels (visible while a call is active)
 *   mute-button     toggles the microphone; aria-pressed="true" when muted
 *   call-state      text is exactly one of: idle, connecting-signaling,
 *                   human-check, ringing, connecting, connected, ended, error
 *   call-timer      mm:ss since connected
 *   error-message   text of the current error (lookup or call); attribute
 *                   data-code holds the error code
 *   retry-button    repeats the failed lookup or call (only when sensible)
 *   back-button     after ended/error: back to state idle
 *   level-meter     role="meter", aria-valuenow 0..100 (bot voice level)
 *   bot-verified    after the answer: "Verified bot" (its signature checked:
 *                   self-certifying id or pinned key), "Unverified bot"
 *                   (HS256: it cannot prove itself) or "Key changed";
 *                   attribute data-trust: self, key, none, changed
 *   trust-note      shown for "Unverified bot": why it cannot be verified
 *   key-warning     shown when a pinned bot’s published key changed
 *   trust-key       in key-warning: pin the new key
 * window.botcall:
 *   state           same string as call-state
 *   pc              the current RTCPeerConnection, or null
 *   callId          call_id from `ringing`, or null
 *   remoteLevel     latest RMS 0..1 of the remote stream (AnalyserNode)
 *   error           {code, message} of the last call error, or null
 *   verified        the answer check: self, key, none, or refused:<code>
 *   timings         performance.now() values, null until reached, reset per
 *                   call: callPressedAt, welcomeAt, powStartedAt, powDoneAt,
 *                   ringingAt, answerAt, connectedAt, firstRemoteLevelAt
 *                   (analyser RMS > 1e-4), firstInboundPacketAt (getStats
 *                   inbound-rtp packetsReceived > 0), firstAudioAt (the
 *                   earlier of those two), endedAt
 */
import { lookup, listAgents, isValidId } from './api.js';
import { Call } from './call.js';
import { unlockAudio } from './meter.js';
import { createStore } from './store.js';
import { describe } from './errors.js';
import { pins } from './answer-sig.js';
import { h, ago, clock, hue, levelToUnit } from './ui.js';
import { pushState, callbackId, toggle as togglePush, renew as renewPush } from './push.js';

const STATES = ['idle', 'connecting-signaling', 'human-check', 'ringing', 'connecting', 'connected', 'ended', 'error'];
const ACTIVE = new Set(STATES.slice(1, 6));
const STATUS = {
  idle: '', 'connecting-signaling': 'Connecting…', 'human-check': 'Checking you’re human…',
  ringing: 'Ringing…', connecting: 'Connecting audio…', connected: 'Connected', ended: 'Call ended', error: 'Call failed',
};
const RAW = new URLSearchParams(location.search).get('raw') === '1';

const $ = (id) => document.getElementById(id);
const store = createStore();
const pinned = pins();
const dbg = {
  state: 'idle', pc: null, callId: null, remoteLevel: 0, error: null, raw: RAW,
  timings: Object.fromEntries(['callPressedAt', 'welcomeAt', 'powStartedAt', 'powDoneAt', 'ringingAt', 'answerAt',
    'connectedAt', 'firstRemoteLevelAt', 'firstInboundPacketAt', 'firstAudioAt', 'endedAt'].map((k) => [k, null])),
};
window.botcall = dbg;

let bot = null; // last lookup answer
let call = null;
let retryAction = null;
let lookupSeq = 0;
let tick = 0;
let cursor = null;
let wake = null;
let lastAria = 0;

const botName = () => (bot ? bot.name || bot.agent_id : '');

/* ---------- state machine ---------- */

function setState(s, info = {}) {
  dbg.state = s;
  document.querySelector('[data-testid="call-state"]').textContent = s;
  document.body.dataset.state = s;
  document.body.classList.toggle('in-call', s !== 'idle');
  const active = ACTIVE.has(s);
  $('call-btn').hidden = !(s === 'idle' || s === 'ended');
  $('call-btn').querySelector('span').textContent = s === 'ended' ? 'Call again' : 'Call';
  $('mute-btn').hidden = !active;
  $('hangup-btn').hidden = !active;
  $('back-btn').hidden = !(s === 'ended' || s === 'error');
  $('pow').hidden = s !== 'human-check';
  $('meter').hidden = !(s === 'connecting' || s === 'connected');
  $('call-timer').hidden = !(s === 'connected' || (s === 'ended' && dbg.timings.connectedAt));
  let status = STATUS[s];
  if (s === 'ended' && info.by === 'remote') status = remoteEndText(info.reason);
  $('call-status').textContent = status;
  $('call-hint').textContent = s === 'connecting-signaling' ? 'Allow the microphone if your browser asks.' : idleHint(s);
  if (status) announce(status);
}

function remoteEndText(reason) {
  if (!reason || reason === 'normal' || reason === 'hangup') return `${botName()} hung up`;
  if (reason === 'peer_gone') return `${botName()} disconnected`;
  return `${botName()} ended the call (${reason})`;
}

function idleHint(s) {
  return s === 'idle' && bot && !bot.online ? 'This bot looks offline, but you can still try.' : '';
}

function onCallState(s, info) {
  setState(s, info);
  if (s === 'connected') {
    startTimer();
    navigator.wakeLock?.request('screen').then((w) => {
      if (dbg.state === 'connected') wake = w; else w.release();
    }, () => {});
  }
  if (s === 'ended' || s === 'error') {
    clearInterval(tick);
    wake?.release().catch(() => {});
    wake = null;
    $('remote-audio').srcObject = null;
    setLevel(0);
    const outcome = s === 'error' ? info.code : dbg.timings.connectedAt ? 'ended' : 'cancelled';
    store.addRecent({ id: call.to, name: call.bot, outcome, duration: info.duration });
    if (s === 'error') showError(info, info.retry ? startCall : null);
    if (s === 'ended') $('call-btn').focus();
  }
}

/* ---------- calls ---------- */

function startCall() {
  if (!bot || (call && ACTIVE.has(call.state))) return;
  const t0 = performance.now();
  unlockAudio(); // inside the click: iOS and autoplay policies need the gesture
  for (const k of Object.keys(dbg.timings)) dbg.timings[k] = null;
  Object.assign(dbg, { callId: null, error: null, remoteLevel: 0, pc: null, verified: null });
  showTrust(null);
  const key = pinned.key(bot.agent_id, bot.answer_sig === 'key' ? bot.key : null);
  dbg.timings.callPressedAt = t0;
  hideError();
  $('call-timer').textContent = '00:00';
  $('pow-bar').value = 0;
  call = new Call({
    to: bot.agent_id, bot: botName(), raw: RAW, debug: dbg, key: key.key, callback: callbackId(bot.agent_id),
    on: {
      state: onCallState,
      verified: (v) => {
        if (v.trust === 'key' && key.state === 'new') pinned.pin(bot.agent_id, v.jwk);
        showTrust(v.trust === 'key' && key.state === 'changed' ? 'changed' : v.trust);
      },
      progress: (f) => {
        $('pow-bar').value = Math.round(f * 100);
        $('pow-label').textContent = `Checking you’re human… ${Math.round(f * 100)}%`;
      },
      remote: (stream) => {
        const a = $('remote-audio');
        a.srcObject = stream;
        a.play().catch(() => {});
      },
      level: setLevel,
    },
  });
  setMuted(false);
  call.start();
  $('hangup-btn').focus();
}

/** The badge after the answer check (null: hidden). */
function showTrust(trust) {
  const b = $('bot-trust');
  b.hidden = !trust;
  b.dataset.trust = trust || '';
  b.classList.toggle('on', trust === 'self' || trust === 'key');
  b.textContent = { self: 'Verified bot', key: 'Verified bot', none: 'Unverified bot', changed: 'Key changed' }[trust] || '';
  b.title = {
    self: 'The bot signed its answer with the key its id is made from.',
    key: 'The bot signed its answer with the key you first saw for it.',
    none: 'This bot’s key (a shared secret) cannot prove to you that the answer is its own.',
    changed: 'The bot’s key is not the one you first saw for it.',
  }[trust] || '';
  $('key-warning').hidden = trust !== 'changed';
  $('trust-note').hidden = trust !== 'none';
  if (trust === 'changed') announce('Warning: this bot’s key has changed');
}

function setMuted(m) {
  const muted = call ? call.setMuted(m) : m;
  $('mute-btn').setAttribute('aria-pressed', String(muted));
  $('mute-btn').querySelector('span').textContent = muted ? 'Muted' : 'Mute';
}

function startTimer() {
  clearInterval(tick);
  const show = () => { $('call-timer').textContent = clock((performance.now() - dbg.timings.connectedAt) / 1000); };
  show();
  tick = setInterval(show, 250);
}

function setLevel(rms) {
  const v = levelToUnit(rms);
  const m = $('meter');
  m.style.setProperty('--level', v.toFixed(3));
  const t = performance.now();
  if (t - lastAria > 200 || v === 0) {
    lastAria = t;
    m.setAttribute('aria-valuenow', String(Math.round(v * 100)));
  }
}

/* ---------- lookup ---------- */

async function doLookup(raw) {
  const id = String(raw || '').trim();
  const seq = ++lookupSeq;
  if (dbg.state === 'ended' || dbg.state === 'error') setState('idle');
  hideError();
  if (!isValidId(id)) {
    showError(describe('invalid_agent_id'), null);
    $('bot-id').focus();
    return;
  }
  const btn = document.querySelector('[data-testid="lookup-button"]');
  btn.disabled = true;
  btn.textContent = 'Looking up…';
  try {
    const a = await lookup(id);
    if (seq !== lookupSeq) return;
    showBot(a, id);
    setRoute(a.agent_id);
    announce(`${botName()} is ${a.online ? 'online' : 'offline'}`);
    $('call-btn').focus();
  } catch (e) {
    if (seq !== lookupSeq) return;
    bot = null;
    $('stage').hidden = true;
    const info = describe(e.code, { bot: `Bot “${id}”`, detail: e.error });
    showError(info, info.retry ? () => doLookup(id) : null);
  } finally {
    btn.disabled = false;
    btn.textContent = 'Look up';
  }
}

function showBot(a, id) {
  bot = { ...a, agent_id: isValidId(a.agent_id) ? a.agent_id : id, online: a.online === true };
  const name = botName();
  $('avatar').textContent = name.slice(0, 1).toUpperCase();
  $('avatar').className = `avatar ${hue(bot.agent_id)}`;
  $('bot-name').textContent = name;
  $('bot-id-text').textContent = bot.agent_id;
  $('bot-status').textContent = bot.online ? 'online' : 'offline';
  $('bot-status').classList.toggle('on', bot.online);
  $('star').setAttribute('aria-pressed', String(store.isFavourite(bot.agent_id)));
  $('star').setAttribute('aria-label', `Favourite ${name}`);
  store.renameFavourite(bot.agent_id, a.name);
  showBell(pushState(bot.agent_id));
  $('stage').hidden = false;
  showTrust(null);
  setState('idle');
}

const BELL = { on: 'Notifications on for', off: 'Notify me about', blocked: 'Notifications blocked for', working: 'Working on notifications for' };

function showBell(s) {
  const b = $('bell');
  b.hidden = s === 'unsupported';
  b.dataset.state = s;
  b.setAttribute('aria-pressed', String(s === 'on'));
  b.setAttribute('aria-label', `${BELL[s] || BELL.off} ${botName()}`);
  b.title = s === 'blocked' ? 'Notifications are blocked in your browser settings' : b.getAttribute('aria-label');
}

function select(id) {
  if (call && ACTIVE.has(call.state)) return;
  $('bot-id').value = id;
  doLookup(id);
  window.scrollTo({ top: 0, behavior: 'smooth' });
}

/* ---------- errors and announcements ---------- */

function showError(info, retry) {
  retryAction = retry;
  const box = $('error');
  if (dbg.state === 'idle') $('stage').before(box);
  else $('call-status').after(box);
  $('error-text').textContent = info.message;
  $('error-text').dataset.code = info.code;
  $('retry-btn').hidden = !retry;
  $('error').hidden = false;
}

function hideError() {
  retryAction = null;
  $('error').hidden = true;
  $('error-text').textContent = '';
  delete $('error-text').dataset.code;
}

function announce(text) {
  $('live').textContent = text;
}

/* ---------- lists ---------- */

function item(id, name, meta, dot) {
  const b = h('button', { type: 'button', class: 'item' },
    h('span', { class: `avatar sm ${hue(id)}${dot === undefined ? '' : dot ? ' on' : ' off'}`, 'aria-hidden': 'true' },
      (name || id).slice(0, 1).toUpperCase()),
    h('span', { class: 'item-text' }, h('span', { class: 'item-name' }, name || id),
      h('span', { class: 'item-meta' }, meta)));
  b.addEventListener('click', () => select(id));
  return h('li', {}, b);
}

function renderSaved() {
  const favs = store.favourites();
  $('favs').hidden = !favs.length;
  $('favs-list').replaceChildren(...favs.map((f) => item(f.id, f.name, f.id)));
  const rec = store.recent();
  $('recent').hidden = !rec.length;
  $('recent-list').replaceChildren(...rec.map((r) => item(r.id, r.name, [
    ago(r.at), r.outcome === 'ended' ? clock(r.duration) : outcomeText(r.outcome),
  ].join(' · '))));
}

function outcomeText(code) {
  return { cancelled: 'cancelled', offline: 'offline', busy: 'busy', rejected: 'rejected', no_answer: 'no answer' }[code] || 'failed';
}

async function loadDirectory(more = false) {
  const note = $('dir-note');
  if (!more) { cursor = null; $('dir-list').replaceChildren(); }
  note.textContent = 'Loading…';
  $('dir-more').hidden = true;
  try {
    const page = await listAgents({ online: true, limit: 50, cursor: more ? cursor : null });
    cursor = page.next_cursor;
    $('dir-list').append(...page.agents.map((a) => item(a.agent_id, a.name, a.agent_id, a.online === true)));
    note.textContent = $('dir-list').children.length ? '' : 'No listed bots are online right now. Enter a bot id above.';
    $('dir-more').hidden = !cursor;
  } catch (e) {
    note.textContent = `Could not load the list: ${describe(e.code, { detail: e.error }).message}`;
    $('dir-more').hidden = !more;
  }
}

/* ---------- routing ---------- */

function routeId() {
  const m = location.hash.match(/^#\/call\/([^/?#]+)/) || location.pathname.match(/^\/call\/([^/?#]+)\/?$/);
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch { return null; }
}

function setRoute(id) {
  const enc = encodeURIComponent(id);
  const url = location.hash.startsWith('#/call/')
    ? `${location.pathname}${location.search}#/call/${enc}`
    : `/call/${enc}${location.search}`;
  if (url !== location.pathname + location.search + location.hash) history.replaceState(null, '', url);
}

function route() {
  if (call && ACTIVE.has(call.state)) return;
  const id = routeId();
  if (id && id !== bot?.agent_id) {
    $('bot-id').value = id;
    doLookup(id);
  }
}

/* ---------- wiring ---------- */

$('lookup-form').addEventListener('submit', (e) => {
  e.preventDefault();
  if (!(call && ACTIVE.has(call.state))) doLookup($('bot-id').value);
});
$('call-btn').addEventListener('click', startCall);
$('hangup-btn').addEventListener('click', () => call?.hangup());
$('mute-btn').addEventListener('click', () => setMuted(!call?.muted));
$('back-btn').addEventListener('click', () => {
  hideError();
  setState('idle');
  renderSaved();
  $('call-btn').focus();
});
$('retry-btn').addEventListener('click', () => retryAction?.());
$('trust-key').addEventListener('click', () => {
  if (!bot?.key) return;
  pinned.pin(bot.agent_id, bot.key);
  showTrust('key');
});
$('star').addEventListener('click', () => {
  if (!bot) return;
  const on = store.toggleFavourite(bot.agent_id, bot.name || '');
  $('star').setAttribute('aria-pressed', String(on));
  announce(on ? `${botName()} added to favourites` : `${botName()} removed from favourites`);
  renderSaved();
});
$('bell').addEventListener('click', async () => {
  if (!bot || $('bell').dataset.state === 'working') return;
  const id = bot.agent_id;
  showBell('working');
  let s;
  try {
    s = await togglePush(id);
  } catch (e) {
    s = pushState(id);
    showError(describe(e.code || 'push_failed', { detail: e.message }), null);
  }
  if (bot?.agent_id === id) showBell(s);
  announce(s === 'on' ? `You’ll be told when ${botName()} is online` : s === 'blocked' ? 'Notifications are blocked' : `Notifications off for ${botName()}`);
});
$('dir-refresh').addEventListener('click', () => loadDirectory(false));
$('dir-more').addEventListener('click', () => loadDirectory(true));
window.addEventListener('hashchange', route);
window.addEventListener('popstate', route);
window.addEventListener('pagehide', () => call?.hangup());

setState('idle');
renderSaved();
route();
loadDirectory();

if ('serviceWorker' in navigator && window.isSecureContext) {
  navigator.serviceWorker.register('/sw.js', { scope: '/' }).then(renewPush, () => {});
}
