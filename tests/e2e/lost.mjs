// The audio path breaks mid-call: the bot process is frozen (SIGSTOP) so its
// media stops while its signaling socket stays open. The page must notice
// (ICE 'disconnected' for more than 5 s), say "network lost" and offer a
// retry; once the bot runs again (SIGCONT), Retry places a new call that
// connects and carries audio.
// Usage: node lost.mjs --url URL --bot ID --wav FILE --bot-pid PID
import { args, launch, until, report } from './lib.mjs';

const a = args();
const pid = Number(a['bot-pid']);
const { context, done } = await launch({ wav: a.wav });
const out = {};
const audioFlowing = () => window.botcall.state === 'connected'
  && window.botcall.timings.firstInboundPacketAt && window.botcall.timings.firstRemoteLevelAt;
let stopped = false;
try {
  const page = context.pages()[0] || (await context.newPage());
  await page.goto(`${a.url}/call/${a.bot}?raw=1`);
  await until(page, () => document.querySelector('[data-testid=bot-status]')?.textContent.includes('online'), null, 10000, 'bot online');
  await page.click('[data-testid=call-button]');
  await until(page, audioFlowing, null, 20000, 'first call: audio flowing');
  out.firstCallId = await page.evaluate(() => window.botcall.callId);

  process.kill(pid, 'SIGSTOP');
  stopped = true;
  const t0 = Date.now();
  await until(page, () => window.botcall.state === 'error', null, 40000, 'the page to notice the lost audio path');
  out.stopToErrorMs = Date.now() - t0;
  out.error = await page.evaluate(() => window.botcall.error);
  out.errorText = await page.textContent('[data-testid=error-message]');
  out.retryVisible = await page.isVisible('[data-testid=retry-button]');
  out.hangupVisible = await page.isVisible('[data-testid=hangup-button]');

  process.kill(pid, 'SIGCONT');
  stopped = false;
  await page.click('[data-testid=retry-button]');
  await until(page, audioFlowing, null, 20000, 'retried call: audio flowing');
  out.retryCallId = await page.evaluate(() => window.botcall.callId);
  out.errorHiddenAfterRetry = !(await page.isVisible('[data-testid=error-message]'));
  await page.click('[data-testid=hangup-button]');
  await until(page, () => window.botcall.state === 'ended', null, 5000, 'ended');
  out.finalState = 'ended';
  report(out);
} catch (e) {
  out.failure = String(e && e.stack || e);
  report(out, 1);
} finally {
  if (stopped) try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
  await done();
}
