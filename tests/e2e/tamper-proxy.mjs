// A test-only man in the middle between the PWA and botcalld: a real
// HTTP/WebSocket proxy that passes everything through, and in tamper mode
// rewrites the `a=fingerprint` of every `answer` the daemon sends to a
// caller (what a malicious daemon, or anyone on its path, would do to
// put its own DTLS certificate in the middle of the media).
// Usage: node tamper-proxy.mjs --upstream HOST:PORT
// Prints `LISTEN <port>`; stdin lines switch it: `tamper on|off|strip`
// (strip: drop the answer's `answer_sig` instead),
// `upstream HOST:PORT` (closes open connections). Prints `TAMPERED <call_id>` per rewritten answer.
import net from 'node:net';
import { createInterface } from 'node:readline';
import { args } from './lib.mjs';

const a = args();
let upstream = a.upstream;
let tamper = 'off'; // off | on (rewrite a=fingerprint) | strip (drop answer_sig)
const say = (line) => process.stdout.write(`${line}\n`);

/** The answer's sha-256 digest with its first byte changed. */
function rewrite(sdp) {
  return sdp.replace(/a=fingerprint:sha-256 ([0-9A-Fa-f]{2})/g, (_, b) => `a=fingerprint:sha-256 ${b.toUpperCase() === '00' ? '11' : '00'}`);
}

function frame(opcode, payload) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n])
    : n < 65536 ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 255])
      : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
  return Buffer.concat([head, payload]);
}

/** Server → client WebSocket bytes: unmasked frames, rewritten when tampering. */
function serverFrames(out) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1] & 127;
      let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); off = 10; }
      if (buf[1] & 128) off += 4; // servers do not mask; pass it on if one did
      if (buf.length < off + len) return;
      const whole = buf.subarray(0, off + len);
      const opcode = buf[0] & 15;
      let outFrame = whole;
      if (tamper !== 'off' && opcode === 1 && (buf[0] & 128) && !(buf[1] & 128)) {
        const text = buf.subarray(off, off + len).toString('utf8');
        if (text.includes('"answer"')) {
          try {
            const m = JSON.parse(text);
            if (m.type === 'answer' && typeof m.sdp_answer === 'string') {
              if (tamper === 'strip') delete m.answer_sig;
              else m.sdp_answer = rewrite(m.sdp_answer);
              outFrame = frame(1, Buffer.from(JSON.stringify(m)));
              say(`TAMPERED ${m.call_id}`);
            }
          } catch { /* not JSON: pass through */ }
        }
      }
      out.write(outFrame);
      buf = buf.subarray(off + len);
    }
  };
}

const open = new Set();
const server = net.createServer((client) => {
  open.add(client);
  client.on('close', () => open.delete(client));
  const [host, port] = upstream.split(':');
  const up = net.connect(Number(port), host);
  let head = Buffer.alloc(0);
  let ws = false;
  let upHead = Buffer.alloc(0);
  let toClient = null;
  client.on('data', (d) => {
    if (head !== null) {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0 && head.length < 16384) return;
      ws = /^upgrade:\s*websocket/im.test(head.subarray(0, end).toString('latin1'));
      up.write(head);
      head = null;
      return;
    }
    up.write(d);
  });
  up.on('data', (d) => {
    if (!ws) { client.write(d); return; }
    if (toClient) { toClient(d); return; }
    upHead = Buffer.concat([upHead, d]);
    const end = upHead.indexOf('\r\n\r\n');
    if (end < 0) return;
    client.write(upHead.subarray(0, end + 4));
    toClient = serverFrames(client);
    toClient(upHead.subarray(end + 4));
  });
  const close = () => { client.destroy(); up.destroy(); };
  client.on('close', close); up.on('close', close);
  client.on('error', close); up.on('error', close);
});

createInterface({ input: process.stdin }).on('line', (l) => {
  const [cmd, arg] = l.trim().split(/\s+/);
  if (cmd === 'tamper') tamper = arg;
  if (cmd === 'upstream') {
    // Kept-alive connections would still reach the old upstream.
    upstream = arg;
    for (const c of open) c.destroy();
  }
  say(`OK ${l.trim()}`);
}).on('close', () => process.exit(0));

server.listen(0, '127.0.0.1', () => say(`LISTEN ${server.address().port}`));
