// A person calls a bot: open the PWA at /call/<id>?raw=1, press Call, talk
// (the fake microphone plays a WAV), hear the bot, hang up. Measures the
// time from pressing Call to audio flowing and takes the screenshots.
// Usage: node call.mjs --url URL --bot ID --wav FILE --shots DIR [--listen-packets 150]
import { args, launch, until, report } from './lib.mjs';

const a = args();
const listenPackets = Number(a['listen-packets'] || 150);
const { context, done } = await launch({ wav: a.wav });
const out = {};
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error') (out.consoleErrors ||= []).push(m.text()); });
  await page.goto(`${a.url}/call/${a.bot}?raw=1`);
  await until(page, () => document.querySelector('[data-testid=bot-status]')?.textContent.includes('online'), null, 60000, 'bot online');
  out.statusText = await page.textContent('[data-testid=bot-status]');
  await page.screenshot({ path: `${a.shots}/idle.png` });

  const t0 = Date.now();
  await page.click('[data-testid=call-button]');
  await until(page, () => window.botcall.state === 'connected' || window.botcall.state === 'error', null, 60000, 'connected');
  out.stateAfterCall = await page.evaluate(() => window.botcall.state);
  if (out.stateAfterCall !== 'connected') throw new Error(`call failed: ${JSON.stringify(await page.evaluate(() => window.botcall.error))}`);
  await until(page, () => window.botcall.timings.firstInboundPacketAt && window.botcall.timings.firstRemoteLevelAt, null, 60000, 'audio flowing');
  out.wallToConnectedMs = Date.now() - t0;
  // Let audio flow until the page has sent and received `listenPackets`
  // RTP packets and heard a non-silent level (counted, not a wall-clock
  // window: a loaded machine takes longer, not fewer). The limit only ends
  // a call that never carries audio.
  let maxLevel = 0;
  const limit = Date.now() + 60000;
  for (;;) {
    maxLevel = Math.max(maxLevel, await page.evaluate(() => window.botcall.remoteLevel || 0));
    const n = await page.evaluate(async () => {
      let inb = 0, outb = 0;
      (await window.botcall.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'audio') inb = r.packetsReceived;
        if (r.type === 'outbound-rtp' && r.kind === 'audio') outb = r.packetsSent;
      });
      return [inb, outb];
    });
    if (n[0] >= listenPackets && n[1] >= listenPackets && maxLevel > 0.05) break;
    if (Date.now() > limit) throw new Error(`no audio in 60 s: packets in/out ${n}, level ${maxLevel}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  out.maxRemoteLevel = maxLevel;
  out.stats = await page.evaluate(async () => {
    const s = { inbound: null, outbound: null };
    (await window.botcall.pc.getStats()).forEach((r) => {
      if (r.type === 'inbound-rtp' && r.kind === 'audio') s.inbound = { packetsReceived: r.packetsReceived, packetsLost: r.packetsLost, audioLevel: r.audioLevel ?? null, totalAudioEnergy: r.totalAudioEnergy ?? null, jitter: r.jitter };
      if (r.type === 'outbound-rtp' && r.kind === 'audio') s.outbound = { packetsSent: r.packetsSent };
      if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') s.rttMs = (r.currentRoundTripTime || 0) * 1000;
    });
    return s;
  });
  out.timings = await page.evaluate(() => window.botcall.timings);
  const t = out.timings;
  out.callToAudioMs = Math.round(t.firstAudioAt - t.callPressedAt);
  out.callToConnectedMs = Math.round(t.connectedAt - t.callPressedAt);
  out.callId = await page.evaluate(() => window.botcall.callId);
  out.verified = await page.evaluate(() => window.botcall.verified);
  out.badge = await page.textContent('[data-testid=bot-verified]');
  out.trustNote = await page.evaluate(() => {
    const n = document.querySelector('[data-testid=trust-note]');
    return n.hidden ? null : n.textContent;
  });
  out.timerText = await page.textContent('[data-testid=call-timer]');
  out.meter = await page.getAttribute('[data-testid=level-meter]', 'aria-valuenow');
  await page.screenshot({ path: `${a.shots}/in-call.png` });

  // Mute stops our audio; unmute again; then hang up.
  await page.click('[data-testid=mute-button]');
  out.mutedPressed = await page.getAttribute('[data-testid=mute-button]', 'aria-pressed');
  await page.click('[data-testid=mute-button]');
  await page.click('[data-testid=hangup-button]');
  await until(page, () => window.botcall.state === 'ended', null, 30000, 'ended');
  out.finalState = 'ended';
  report(out);
} catch (e) {
  out.error = String(e && e.stack || e);
  report(out, 1);
} finally {
  await done();
}
