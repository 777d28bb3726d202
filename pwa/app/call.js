/**
 * One outgoing call, from the Call click to the end, without any DOM:
 * microphone (getUserMedia) and signaling (signal.js) in parallel, the human
 * check when the welcome carries a challenge (pow.js), RTCPeerConnection
 * with the welcome's ice_servers, call/ringing/answer (the answer applied
 * only once the bot's answer_sig checked out, answer-sig.js), trickle ICE in both
 * directions, and end detection (hangup, reject, errors, WebSocket loss,
 * ICE failed or 'disconnected' for more than 5 s, nothing from the bot (no
 * audio packet, no ICE consent check or answer) for 8 s, the bot's DTLS
 * close, device offline). A call that ends on our side
 * tells the daemon why (`hangup` reason `normal`, `media_lost`,
 * `media_timeout`, `media_closed` or `error`), so the bot is freed at once.
 *
 * States, reported through on.state(state, info): connecting-signaling,
 * human-check, ringing, connecting, connected, ended, error. Timings and
 * the live pc/callId go into the shared debug object (window.botcall).
 */
import { Signal } from './signal.js';
import { solvePow } from './pow.js';
import { startMeter } from './meter.js';
import { describe, micErrorCode } from './errors.js';
import { check, REASONS } from './answer-sig.js';

const DISCONNECT_GRACE_MS = 5000;
// Nothing from the bot for this long ends a connected call: no audio packet
// and no ICE consent traffic (RFC 7675; a bot that listens sends no audio).
// The SDK's default media timeout too, with the same rule.
const MEDIA_TIMEOUT_MS = 8000;
const CONNECT_TIMEOUT_MS = 30000;
const LEVEL_THRESHOLD = 1e-4; // RMS above this counts as "remote audio heard"

const now = () => performance.now();

export class Call {
  /**
   * to: agent id; bot: display name; raw: disable the browser's audio
   * processing; key: the bot's public JWK (lookup or pin) that its
   * answer_sig must verify with, or null; debug: window.botcall;
   * on: {state, progress, remote, level, verified}; callback: our push
   * subscription id for this bot, handed to it so it may ask us to call
   * back later.
   */
  constructor({ to, bot = to, raw = false, key = null, debug, on = {}, callback = null }) {
    Object.assign(this, { to, bot, raw, key, dbg: debug, on, callback });
    this.state = 'idle';
    this.callId = null;
    this.pc = null;
    this.sig = null;
    this.local = null;
    this.answered = false;
    this.done = false;
    this.muted = false;
    this.localIce = [];
    this.remoteIce = [];
    this.powTries = 0;
    this.abort = new AbortController();
    this.timers = new Map();
    this.stopMeter = () => {};
    this.onOffline = () => this.later('offline', DISCONNECT_GRACE_MS, () => {
      if (navigator.onLine === false) this.fail('network_lost', 'this device went offline');
    });
  }

  set(state, info = {}) {
    this.state = state;
    this.dbg.state = state;
    this.on.state?.(state, info);
  }

  later(name, ms, fn) {
    clearTimeout(this.timers.get(name));
    this.timers.set(name, setTimeout(fn, ms));
  }

  cancelTimer(name) {
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
  }

  async start() {
    this.set('connecting-signaling');
    globalThis.addEventListener?.('offline', this.onOffline);
    try {
      if (!navigator.mediaDevices?.getUserMedia || typeof RTCPeerConnection === 'undefined') {
        throw Object.assign(new Error(''), { code: 'insecure' });
      }
      this.sig = new Signal();
      this.sig.onmessage = (m) => this.onSignal(m);
      this.sig.onlost = ({ code, reason }) => this.fail(code, reason);
      const mic = this.getMic().then((stream) => {
        if (this.done) stream.getTracks().forEach((t) => t.stop());
        else this.local = stream;
        stream.getAudioTracks().forEach((t) => { t.enabled = !this.muted; });
      });
      const [, welcome] = await Promise.all([mic, this.sig.connect()]);
      if (this.done) return;
      this.dbg.timings.welcomeAt = now();
      this.createPc(welcome.ice_servers);
      const offer = this.makeOffer();
      offer.catch(() => {}); // awaited below; a teardown meanwhile must not go unhandled
      const proof = welcome.challenge ? await this.humanCheck(welcome.challenge) : undefined;
      this.sdp = await offer;
      if (this.done) return;
      this.sendCall(proof);
    } catch (e) {
      if (!this.done) this.fail(e.code || 'error', e.message);
    }
  }

  async getMic() {
    const on = !this.raw;
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: on, noiseSuppression: on, autoGainControl: on },
        video: false,
      });
    } catch (e) {
      throw Object.assign(new Error(e.message), { code: micErrorCode(e) });
    }
  }

  async humanCheck(challenge) {
    this.set('human-check');
    this.dbg.timings.powStartedAt = now();
    const proof = await solvePow(challenge, {
      signal: this.abort.signal,
      onProgress: (f, tried, expected) => this.on.progress?.(f, tried, expected),
    });
    this.dbg.timings.powDoneAt = now();
    return proof;
  }

  createPc(iceServers) {
    const pc = this.pc = new RTCPeerConnection({ iceServers: Array.isArray(iceServers) ? iceServers : [] });
    this.dbg.pc = pc;
    for (const t of this.local.getAudioTracks()) pc.addTrack(t, this.local);
    pc.onicecandidate = ({ candidate }) => {
      if (candidate && !candidate.candidate) return; // Chrome's empty end-of-generation marker
      const c = candidate ? candidate.toJSON() : null;
      if (this.answered) this.sendIce(c); else this.localIce.push(c);
    };
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      if (stream === this.remote) return;
      this.remote = stream;
      this.on.remote?.(stream);
      this.stopMeter();
      this.stopMeter = startMeter(stream, (rms) => this.level(rms));
    };
    pc.onconnectionstatechange = () => this.checkConnection();
    pc.oniceconnectionstatechange = () => this.checkConnection();
  }

  /** Whether the bot closed its side of the media (a DTLS close alert). */
  mediaClosed() {
    const t = this.pc?.getSenders?.()[0]?.transport;
    if (t && !this.watchingDtls) {
      this.watchingDtls = true;
      t.addEventListener?.('statechange', () => this.checkConnection());
    }
    return t?.state === 'closed';
  }

  async makeOffer() {
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    return this.pc.localDescription.sdp;
  }

  sendCall(proof) {
    const msg = { type: 'call', to: this.to, sdp_offer: this.sdp };
    if (proof) msg.proof = proof;
    if (this.callback) msg.callback = this.callback;
    this.sig.send(msg);
  }

  sendIce(candidate) {
    this.sig?.send({ type: 'ice', call_id: this.callId, candidate });
  }

  onSignal(msg) {
    if (this.done) return;
    const mine = msg.call_id === this.callId;
    switch (msg.type) {
      case 'ringing':
        if (this.callId) return;
        this.callId = this.dbg.callId = msg.call_id;
        this.dbg.timings.ringingAt = now();
        this.set('ringing');
        return;
      case 'answer':
        if (mine && !this.answered) this.onAnswer(msg.sdp_answer, msg.answer_sig);
        return;
      case 'ice':
        if (!mine) return;
        if (this.pc.remoteDescription) this.addRemoteIce(msg.candidate);
        else this.remoteIce.push(msg.candidate);
        return;
      case 'reject':
        if (!mine) return;
        if (msg.reason === 'busy') this.fail('busy', '', false);
        else this.fail('rejected', msg.reason || '', false);
        return;
      case 'hangup':
        if (!mine) return;
        if (this.answered) this.end('remote', msg.reason);
        else this.fail(msg.reason === 'timeout' ? 'no_answer' : msg.reason === 'peer_gone' ? 'peer_gone' : 'rejected', msg.reason, false);
        return;
      case 'error':
        this.onError(msg);
        return;
      case 'challenge': // a fresh challenge sent after a human_check_* refusal
        if (this.timers.has('challenge')) { this.cancelTimer('challenge'); this.resolveAgain(msg); }
        else this.spareChallenge = msg;
        return;
      default:
    }
  }

  onError(msg) {
    if (msg.code === 'unknown_type') return; // e.g. our ping on a daemon without it
    if (msg.call_id && msg.call_id !== this.callId) return;
    // Expired challenge: solve the fresh one (an error field or a following
    // `challenge` message) and place the call again, at most twice.
    if (msg.code === 'human_check_required' && !this.callId && this.powTries++ < 2) {
      const c = msg.challenge || this.spareChallenge;
      this.spareChallenge = null;
      if (c) this.resolveAgain(c);
      else this.later('challenge', 3000, () => this.fail('human_check_required', msg.message || '', false));
      return;
    }
    if (this.answered) {
      if (msg.code === 'unknown_call') this.end('remote', 'unknown_call');
      return;
    }
    this.fail(msg.code || 'error', msg.message || '', false);
  }

  resolveAgain(challenge) {
    this.humanCheck(challenge).then((p) => this.done || this.sendCall(p))
      .catch((e) => this.fail(e.code || 'human_check_failed', e.message));
  }

  async onAnswer(sdp, sig) {
    this.answered = true;
    this.dbg.timings.answerAt = now();
    // The bot's signature first: an answer the bot did not make (swapped on
    // the way) is never applied, so no media can reach whoever made it.
    try {
      const v = await check(sig, { agentId: this.to, callId: this.callId, offerSdp: this.sdp, answerSdp: sdp, key: this.key },
        Math.floor(Date.now() / 1000));
      this.dbg.verified = v.trust;
      if (this.done) return;
      this.on.verified?.(v);
    } catch (e) {
      this.dbg.verified = `refused:${e.code}`;
      this.fail('answer_unverified', REASONS[e.code] || e.code || e.message);
      return;
    }
    this.set('connecting');
    this.later('connect', CONNECT_TIMEOUT_MS, () => this.fail('ice_failed', 'connect timeout'));
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (e) {
      this.fail('bad_answer', `the bot sent an unusable answer: ${e.message}`);
      return;
    }
    for (const c of this.remoteIce.splice(0)) this.addRemoteIce(c);
    for (const c of this.localIce.splice(0)) this.sendIce(c);
    this.pollStats();
  }

  addRemoteIce(c) {
    let init = c;
    if (typeof c === 'string') init = c ? { candidate: c.replace(/^a=/, ''), sdpMLineIndex: 0 } : null;
    else if (c && c.sdpMid == null && c.sdpMLineIndex == null) init = { ...c, sdpMLineIndex: 0 };
    const p = init && init.candidate ? this.pc.addIceCandidate(init) : this.pc.addIceCandidate();
    p.catch((e) => console.warn('botcall: remote ICE candidate ignored', e));
  }

  checkConnection() {
    const pc = this.pc;
    if (!pc || this.done) return;
    if (this.answered && this.mediaClosed()) {
      // The bot ended the call; its own `hangup` may still be on its way.
      this.end('remote', 'media_closed');
      return;
    }
    const cs = 'connectionState' in pc ? pc.connectionState : null;
    const is = pc.iceConnectionState;
    const up = cs ? cs === 'connected' : is === 'connected' || is === 'completed';
    if (up) {
      this.cancelTimer('disconnected');
      this.cancelTimer('connect');
      if (this.state !== 'connected') {
        this.dbg.timings.connectedAt = now();
        this.set('connected');
      }
    } else if (cs === 'failed' || is === 'failed') {
      this.fail('ice_failed', 'ICE failed');
    } else if (cs === 'disconnected' || is === 'disconnected') {
      if (!this.timers.has('disconnected')) {
        this.later('disconnected', DISCONNECT_GRACE_MS, () => this.fail('network_lost', 'audio connection interrupted'));
      }
    }
  }

  /**
   * Polls getStats: every 100 ms until the first inbound audio RTP packet,
   * then every second; a connected call that hears nothing from the bot
   * (audio packets, or ICE consent requests and answers: a listening bot
   * may send no audio) for MEDIA_TIMEOUT_MS ends as lost.
   */
  async pollStats() {
    let seen = -1;
    let since = now();
    while (!this.done) {
      let packets = 0;
      let heard = 0;
      try {
        const stats = await this.pc.getStats();
        stats.forEach((r) => {
          if (r.type === 'inbound-rtp' && (r.kind || r.mediaType) === 'audio') packets += r.packetsReceived || 0;
          else if (r.type === 'candidate-pair') heard += (r.requestsReceived || 0) + (r.responsesReceived || 0);
        });
      } catch { return; }
      if (this.done) return;
      if (packets > 0) this.firstAudio('firstInboundPacketAt');
      heard += packets;
      if (heard !== seen || this.state !== 'connected') {
        seen = heard;
        since = now();
      } else if (now() - since > MEDIA_TIMEOUT_MS) {
        this.fail('network_lost', 'no audio from the bot');
        return;
      }
      await new Promise((r) => setTimeout(r, this.dbg.timings.firstInboundPacketAt ? 1000 : 100));
    }
  }

  level(rms) {
    this.dbg.remoteLevel = rms;
    if (rms > LEVEL_THRESHOLD) this.firstAudio('firstRemoteLevelAt');
    this.on.level?.(rms);
  }

  firstAudio(key) {
    const t = this.dbg.timings;
    if (t[key] || this.done) return;
    t[key] = now();
    if (!t.firstAudioAt) t.firstAudioAt = t[key];
  }

  setMuted(muted) {
    this.muted = !!muted;
    for (const s of this.pc?.getSenders() || []) if (s.track) s.track.enabled = !this.muted;
    if (!this.pc) this.local?.getAudioTracks().forEach((t) => { t.enabled = !this.muted; });
    return this.muted;
  }

  /** The user hangs up (or cancels before the bot answered). */
  hangup() {
    if (this.done) return;
    this.end('local', 'normal');
  }

  end(by, reason) {
    if (this.done) return;
    // The bot's media closed: free the call at the daemon even if the bot's
    // own `hangup` never comes.
    this.teardown(by === 'local' || reason === 'media_closed' ? reason : null);
    this.set('ended', { by, reason, duration: this.duration() });
  }

  /** End with an error; `tell` sends our own hangup to the bot, saying why. */
  fail(code, detail = '', tell = true) {
    if (this.done) return;
    this.teardown(tell ? this.hangupReason(code) : null);
    const info = describe(code, { bot: this.bot, detail });
    this.dbg.error = { code: info.code, message: info.message };
    this.set('error', { ...info, duration: this.duration() });
  }

  /** The `hangup` reason for an error: was it the media, and had it ever connected? */
  hangupReason(code) {
    if (code !== 'network_lost' && code !== 'ice_failed') return 'error';
    return this.dbg.timings.connectedAt ? 'media_lost' : 'media_timeout';
  }

  duration() {
    const c = this.dbg.timings.connectedAt;
    return c ? Math.round((now() - c) / 1000) : 0;
  }

  teardown(hangupReason) {
    this.done = true;
    this.dbg.timings.endedAt = now();
    this.abort.abort();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    globalThis.removeEventListener?.('offline', this.onOffline);
    this.stopMeter();
    this.dbg.remoteLevel = 0;
    if (hangupReason && this.callId) this.sig?.send({ type: 'hangup', call_id: this.callId, reason: hangupReason });
    this.sig?.close(1000);
    try { this.pc?.close(); } catch { /* ignore */ }
    this.local?.getTracks().forEach((t) => t.stop());
    this.dbg.pc = null;
  }
}
