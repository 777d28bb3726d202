// The caller verifies the bot, in Chromium: the PWA talks to daemon A
// through tamper-proxy.mjs (a real HTTP/WebSocket proxy process).
// 1. pass-through: the call connects and shows "Verified bot" (the key is
//    pinned on first use);
// 2. tamper on (answers' a=fingerprint rewritten): the call is refused with
//    a clear message and no media; the same with the signature stripped;
// 3. pass-through to daemon B, where the bot has another key: the call
//    shows the key-changed warning; "Trust the new key" re-pins it.
// Usage: node trust.mjs --a HOST:PORT --b HOST:PORT --bot ID --wav FILE --shots DIR
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { args, launch, until, report } from './lib.mjs';

const a = args();
const out = { proxyLog: [] };
const proxy = spawn(process.execPath, [fileURLToPath(new URL('./tamper-proxy.mjs', import.meta.url)), '--upstream', a.a],
  { stdio: ['pipe', 'pipe', 'inherit'] });
const waiters = [];
createInterface({ input: proxy.stdout }).on('line', (l) => {
  out.proxyLog.push(l);
  for (const w of waiters.splice(0)) w();
});
async function proxyLine(prefix) {
  const t0 = Date.now();
  for (;;) {
    const l = out.proxyLog.find((x) => x.startsWith(prefix));
    if (l) return l;
    if (Date.now() - t0 > 60000) throw new Error(`proxy never said ${prefix}`);
    await new Promise((r) => { waiters.push(r); setTimeout(r, 200); });
  }
}
async function command(cmd) {
  proxy.stdin.write(`${cmd}\n`);
  await proxyLine(`OK ${cmd}`);
}

const { context, done } = await launch({ wav: a.wav });
try {
  const port = (await proxyLine('LISTEN ')).split(' ')[1];
  const origin = `http://127.0.0.1:${port}`;
  const page = context.pages()[0] || (await context.newPage());
  const open = async () => {
    await page.goto(`${origin}/call/${a.bot}?raw=1`);
    await until(page, () => document.querySelector('[data-testid=bot-status]')?.textContent.includes('online'), null, 60000, 'bot online');
  };
  const badge = () => page.evaluate(() => {
    const b = document.querySelector('[data-testid=bot-verified]');
    const w = document.querySelector('[data-testid=key-warning]');
    return { text: b.hidden ? '' : b.textContent, trust: b.dataset.trust, warning: !w.hidden, warningText: w.textContent.trim() };
  });
  /** Calls; on success waits for inbound audio, reads the badge, hangs up. */
  const call = async (shot, during) => {
    await page.click('[data-testid=call-button]');
    await until(page, () => window.botcall.state === 'connected' || window.botcall.state === 'error', null, 60000, 'connected or refused');
    const r = { state: await page.evaluate(() => window.botcall.state) };
    if (r.state === 'connected') {
      await until(page, () => window.botcall.timings.firstInboundPacketAt, null, 60000, 'audio from the bot');
    }
    Object.assign(r, await page.evaluate(() => ({
      verified: window.botcall.verified, error: window.botcall.error, callId: window.botcall.callId,
      connectedAt: window.botcall.timings.connectedAt, firstInboundPacketAt: window.botcall.timings.firstInboundPacketAt,
    })));
    r.badge = await badge();
    r.errorText = await page.evaluate(() => document.querySelector('[data-testid=error-message]')?.textContent || '');
    if (shot) await page.screenshot({ path: `${a.shots}/${shot}` });
    if (r.state === 'connected') {
      if (during) r.during = await during();
      await page.click('[data-testid=hangup-button]');
      await until(page, () => window.botcall.state === 'ended', null, 30000, 'ended');
    } else {
      await page.click('[data-testid=back-button]');
    }
    return r;
  };

  await open();
  out.honest = await call('verified.png');
  out.pins = await page.evaluate(() => localStorage.getItem('botcall.pins.v1'));

  await command('tamper on');
  out.tampered = await call('tampered.png');
  out.tamperedLines = out.proxyLog.filter((l) => l.startsWith('TAMPERED '));

  // The signature stripped on the way: a bot with a key must sign.
  await command('tamper strip');
  out.stripped = await call(null);

  await command('tamper off');
  await command(`upstream ${a.b}`);
  await open();
  // The person reads the warning, then accepts the new key: the warning
  // goes, the pin moves.
  out.changed = await call('key-changed.png', async () => {
    await page.click('[data-testid=trust-key]');
    return badge();
  });
  out.afterTrust = out.changed.during;
  out.pinsAfter = await page.evaluate(() => localStorage.getItem('botcall.pins.v1'));
  out.again = await call(null);
  report(out);
} catch (e) {
  out.error = String(e && e.stack || e);
  report(out, 1);
} finally {
  await done();
  proxy.stdin.end();
  proxy.kill();
}
