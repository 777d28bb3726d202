// A person asks a bot a question out loud: the PWA at /call/<id>?raw=1 with
// a WAV as the fake microphone (Chromium loops it), Call pressed, and what
// the page hears from the bot recorded as PCM16 mono at 16 kHz (a Web Audio
// graph on the remote track, as the speaker would play it). The test that
// runs this (tests/python/test_voice_bot.py) writes "stop" on stdin when it
// has what it waits for; the page then hangs up and the recording goes to
// --out. Prints one RESULT line.
// Usage: node voice.mjs --url URL --bot ID --wav FILE --out FILE.pcm
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { args, launch, until, report } from './lib.mjs';

const a = args();
const { context, done } = await launch({ wav: a.wav });
const out = {};
const stop = new Promise((resolve) => {
  createInterface({ input: process.stdin }).on('line', (l) => { if (l.trim() === 'stop') resolve(); });
  process.stdin.on('end', resolve); // the test went away: end the call anyway
});
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error') (out.consoleErrors ||= []).push(m.text()); });
  await page.goto(`${a.url}/call/${a.bot}?raw=1`);
  await until(page, () => document.querySelector('[data-testid=bot-status]')?.textContent.includes('online'), null, 60000, 'bot online');
  await page.click('[data-testid=call-button]');
  await until(page, () => ['connected', 'error'].includes(window.botcall.state), null, 60000, 'connected');
  out.state = await page.evaluate(() => window.botcall.state);
  if (out.state !== 'connected') throw new Error(`call failed: ${JSON.stringify(await page.evaluate(() => window.botcall.error))}`);
  // Record the remote track from here on, resampled by Web Audio to 16 kHz.
  await page.evaluate(() => {
    const track = window.botcall.pc.getReceivers().map((r) => r.track).find((t) => t && t.kind === 'audio');
    const ctx = new AudioContext({ sampleRate: 16000 });
    const src = ctx.createMediaStreamSource(new MediaStream([track]));
    const node = ctx.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
    src.connect(node);
    node.connect(ctx.destination);
    window.voiceRec = { ctx, chunks };
  });
  process.stdout.write('RECORDING\n');
  await stop;
  // The call must still be up: the page ends it on its own only on a fault.
  out.stateAtStop = await page.evaluate(() => window.botcall.state);
  if (out.stateAtStop !== 'connected') {
    out.callError = await page.evaluate(() => window.botcall.error);
    throw new Error(`the call was ${out.stateAtStop} before the test stopped it`);
  }
  const b64 = await page.evaluate(async () => {
    const { ctx, chunks } = window.voiceRec;
    await ctx.close();
    const n = chunks.reduce((s, c) => s + c.length, 0);
    const pcm = new Int16Array(n);
    let i = 0;
    for (const c of chunks) for (const v of c) pcm[i++] = Math.max(-32768, Math.min(32767, Math.round(v * 32767)));
    let s = '';
    const bytes = new Uint8Array(pcm.buffer);
    for (let j = 0; j < bytes.length; j += 0x8000) s += String.fromCharCode(...bytes.subarray(j, j + 0x8000));
    return btoa(s);
  });
  const pcm = Buffer.from(b64, 'base64');
  writeFileSync(a.out, pcm);
  out.recordedSeconds = pcm.length / 2 / 16000;
  await page.click('[data-testid=hangup-button]');
  await until(page, () => window.botcall.state === 'ended', null, 30000, 'ended');
  out.finalState = 'ended';
  report(out);
} catch (e) {
  out.error = String(e && e.stack || e);
  report(out, 1);
} finally {
  await done();
  process.exit(); // stdin (the test's pipe) would keep node alive
}
