// Push notifications in the PWA: the bell on the bot card subscribes, the
// daemon's push reaches the loopback push service, the same payload
// delivered to the real service worker shows the notification, and its
// click opens /call/<id>, where a call to the bot carries audio.
//
// Headless Chromium has no push service (PushManager.subscribe needs
// Google's): an init script replaces `subscribe`/`getSubscription` with ones
// returning the loopback endpoint and test keys (--sub). The payload goes
// to the real service worker with the DevTools command
// ServiceWorker.deliverPushMessage. An OS notification cannot be clicked
// headless (no DevTools command): the test calls the service worker's own
// `openNotification`, which its `notificationclick` listener runs.
//
// Usage: node push.mjs --url URL --bot ID --wav FILE --sub JSON --push URL --name NAME --shots DIR
import { args, launch, until, report } from './lib.mjs';

const a = args();
const { context, done } = await launch({ wav: a.wav });
const out = {};
try {
  await context.grantPermissions(['notifications'], { origin: a.url });
  await context.addInitScript((sub) => {
    let current = null;
    const fake = (key) => ({
      endpoint: sub.endpoint, expirationTime: null, options: { userVisibleOnly: true, applicationServerKey: key },
      toJSON: () => sub, unsubscribe: async () => { current = null; return true; },
    });
    PushManager.prototype.subscribe = async function subscribe(opts) {
      current = fake(opts.applicationServerKey.buffer || opts.applicationServerKey);
      return current;
    };
    PushManager.prototype.getSubscription = async function getSubscription() { return current; };
  }, JSON.parse(a.sub));

  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error') (out.consoleErrors ||= []).push(m.text()); });
  await page.goto(`${a.url}/call/${a.bot}`);
  await until(page, () => document.querySelector('[data-testid=bot-status]')?.textContent === 'offline', null, 60000, 'bot card');
  await until(page, () => navigator.serviceWorker.ready.then((r) => !!r.active), null, 60000, 'service worker active');
  out.bellBefore = await page.getAttribute('[data-testid=bell-button]', 'aria-pressed');
  out.permissionBefore = await page.evaluate(() => Notification.permission);
  await page.click('[data-testid=bell-button]');
  await until(page, () => document.querySelector('[data-testid=bell-button]').getAttribute('aria-pressed') === 'true', null, 60000, 'bell on');
  out.bellAfter = 'true';
  out.stored = await page.evaluate(() => JSON.parse(localStorage.getItem('botcall.push.v1')));
  await page.screenshot({ path: `${a.shots}/bell-on.png` });
  // The person leaves the bot's page; the notification will bring them back.
  await page.goto(`${a.url}/`);

  // The Rust test starts the bot now; the daemon pushes to the loopback service.
  let msg = null;
  const limit = Date.now() + 120000;
  while (!msg) {
    const log = await (await fetch(`${a.push}/log`)).json();
    msg = log.find((m) => m.name === a.name && m.payload);
    if (!msg && Date.now() > limit) throw new Error('no push reached the loopback service');
    if (!msg) await new Promise((r) => setTimeout(r, 100));
  }
  out.pushed = msg;

  // The same payload, to the real service worker. Headless Chromium's
  // notification store sometimes drops a notification that was shown
  // (measured: showNotification resolved, getNotifications empty in about 1
  // run of 10), so the test also records what the worker asked to show.
  const sw = context.serviceWorkers().find((w) => w.url().startsWith(a.url));
  if (!sw) throw new Error('no service worker handle');
  out.swState = await sw.evaluate(() => {
    const show = self.registration.showNotification.bind(self.registration);
    self.registration.showNotification = (title, opts) => show(title, opts).then(() => {
      self.shownForTest = { title, body: opts.body, data: opts.data, tag: opts.tag };
    });
    return self.registration.active?.state;
  });
  const cdp = await context.newCDPSession(page);
  const regs = new Promise((resolve) => cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => {
    const r = e.registrations.find((x) => !x.isDeleted && x.scopeURL.startsWith(a.url));
    if (r) resolve(r);
  }));
  cdp.on('ServiceWorker.workerErrorReported', (e) => (out.swErrors ||= []).push(e.errorMessage));
  await cdp.send('ServiceWorker.enable');
  const reg = await regs;
  await cdp.send('ServiceWorker.deliverPushMessage', {
    origin: a.url, registrationId: reg.registrationId, data: JSON.stringify(msg.payload),
  });
  const shownLimit = Date.now() + 60000;
  while (!(out.notification = await sw.evaluate(() => self.shownForTest || null))) {
    if (Date.now() > shownLimit) throw new Error('the service worker showed no notification');
    await new Promise((r) => setTimeout(r, 50));
  }
  out.listed = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).length);

  // The tap: the service worker's click handler opens /call/<id> (on the
  // listed notification, or on one with the same data when Chromium lost it).
  out.pathBeforeClick = await page.evaluate(() => location.pathname);
  out.clicked = await sw.evaluate(async () => {
    const [n] = await self.registration.getNotifications();
    const c = await self.openNotification(n || { data: self.shownForTest.data, close() {} });
    return c ? c.url : null;
  });
  await until(page, (bot) => location.pathname === `/call/${bot}`, a.bot, 60000, 'the call page');
  out.pathAfterClick = await page.evaluate(() => location.pathname);
  out.notificationsLeft = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).length);
  await until(page, () => document.querySelector('[data-testid=bot-status]')?.textContent === 'online', null, 60000, 'bot online');

  // The person starts the call.
  await page.click('[data-testid=call-button]');
  await until(page, () => window.botcall.state === 'connected' || window.botcall.state === 'error', null, 60000, 'connected');
  out.stateAfterCall = await page.evaluate(() => window.botcall.state);
  if (out.stateAfterCall !== 'connected') throw new Error(`call failed: ${JSON.stringify(await page.evaluate(() => window.botcall.error))}`);
  let maxLevel = 0;
  let n = [0, 0];
  const audioLimit = Date.now() + 60000;
  for (;;) {
    maxLevel = Math.max(maxLevel, await page.evaluate(() => window.botcall.remoteLevel || 0));
    n = await page.evaluate(async () => {
      let inb = 0, outb = 0;
      (await window.botcall.pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'audio') inb = r.packetsReceived;
        if (r.type === 'outbound-rtp' && r.kind === 'audio') outb = r.packetsSent;
      });
      return [inb, outb];
    });
    if (n[0] >= 100 && n[1] >= 100 && maxLevel > 0.05) break;
    if (Date.now() > audioLimit) throw new Error(`no audio in 60 s: packets in/out ${n}, level ${maxLevel}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  out.packets = n;
  out.maxRemoteLevel = maxLevel;
  await page.click('[data-testid=hangup-button]');
  await until(page, () => window.botcall.state === 'ended', null, 30000, 'ended');

  // The bell turns off again: the daemon forgets the subscription.
  await page.click('[data-testid=back-button]');
  await page.click('[data-testid=bell-button]');
  await until(page, () => document.querySelector('[data-testid=bell-button]').getAttribute('aria-pressed') === 'false', null, 60000, 'bell off');
  out.storedAfterOff = await page.evaluate(() => JSON.parse(localStorage.getItem('botcall.push.v1')));
  report(out);
} catch (e) {
  out.error = String(e && e.stack || e);
  report(out, 1);
} finally {
  await done();
}
