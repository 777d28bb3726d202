/**
 * WebSocket signaling client for /v1/ws as a caller (docs/protocol.md,
 * "WebSocket"). connect() sends hello{role:'caller', v:1} and resolves with
 * the welcome (session, ice_servers, optional challenge). Later messages go
 * to `onmessage`; an unexpected close, or silence for more than two
 * heartbeat intervals while application pings go unanswered, is reported
 * once through `onlost({code, reason})`. No reconnect: a lost socket ends
 * the call.
 */

export function signalUrl(loc = globalThis.location) {
  return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/v1/ws`;
}

export class Signal {
  constructor(url = signalUrl()) {
    this.url = url;
    this.ws = null;
    this.welcome = null;
    this.onmessage = () => {};
    this.onlost = () => {};
    this.closed = false;
    this.lastRx = 0;
    this.timer = 0;
  }

  /** Open the socket, say hello, resolve with the welcome message. */
  connect(timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      let ws;
      try { ws = this.ws = new WebSocket(this.url); } catch (e) {
        reject(Object.assign(new Error('could not open the signaling connection'), { code: 'network' }));
        return;
      }
      const fail = (code, message) => {
        clearTimeout(t);
        reject(Object.assign(new Error(message), { code }));
        this.close();
      };
      const t = setTimeout(() => fail('timeout', 'no welcome from the server'), timeoutMs);
      ws.onopen = () => this.send({ type: 'hello', role: 'caller', v: 1 });
      ws.onmessage = (ev) => {
        this.lastRx = Date.now();
        let msg;
        try { msg = JSON.parse(ev.data); } catch { return; }
        if (!msg || typeof msg.type !== 'string') return;
        if (!this.welcome) {
          if (msg.type === 'welcome') {
            clearTimeout(t);
            this.welcome = msg;
            this.startHeartbeat(Number(msg.heartbeat_interval) || 30);
            resolve(msg);
          } else if (msg.type === 'error') {
            fail(msg.code || 'error', msg.message || 'refused by the server');
          }
          return;
        }
        if (msg.type === 'pong') return;
        this.onmessage(msg);
      };
      ws.onclose = (ev) => {
        if (!this.welcome) {
          fail(ev.code === 1006 ? 'network' : closeCode(ev.code), closeText(ev.code));
          return;
        }
        this.lost(closeCode(ev.code), closeText(ev.code));
      };
      ws.onerror = () => {}; // a close event always follows
    });
  }

  /** Send a JSON message; false when the socket is not open. */
  send(msg) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** App-level ping (the daemon's WebSocket pings are invisible to JS). */
  startHeartbeat(intervalS) {
    const ms = Math.max(5, intervalS) * 1000;
    this.timer = setInterval(() => {
      if (Date.now() - this.lastRx > 2 * ms + 5000) {
        this.lost('network_lost', 'the server stopped responding');
        this.close(4002);
        return;
      }
      this.send({ type: 'ping' });
    }, ms);
  }

  lost(code, reason) {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.onlost({ code, reason });
  }

  /** Close deliberately (no onlost). */
  close(code = 1000) {
    this.closed = true;
    clearInterval(this.timer);
    const ws = this.ws;
    if (ws && ws.readyState <= 1) {
      try { ws.close(code >= 4000 || code === 1000 ? code : 1000); } catch { /* ignore */ }
    }
  }
}

function closeCode(code) {
  if (code === 1013) return 'server_busy';
  if (code === 1001) return 'server_shutdown';
  if (code === 1008) return 'policy';
  return 'network_lost';
}

function closeText(code) {
  switch (code) {
    case 1001: return 'server restarting';
    case 1008: return 'closed by server policy';
    case 1009: return 'message too large';
    case 1011: return 'server error';
    case 1013: return 'server busy';
    default: return `signaling connection closed, code ${code}`;
  }
}
