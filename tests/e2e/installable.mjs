// The PWA is installable and works offline: manifest fields valid, icons
// served at their declared sizes, service worker registered and controlling
// the page, and after the daemon is killed the shell still loads. Records
// the Content-Encoding of every shell file Chromium fetched from the daemon.
// Usage: node installable.mjs --url http://127.0.0.1:PORT --pid DAEMON_PID --shot FILE
import { args, launch, until, report } from './lib.mjs';

const a = args();
const { context, done } = await launch();
const out = {};
try {
  const page = context.pages()[0] || (await context.newPage());
  out.encodings = [];
  page.on('response', async (r) => {
    if (r.fromServiceWorker() || !r.url().startsWith(a.url) || r.status() !== 200) return;
    const h = await r.allHeaders();
    out.encodings.push({ path: new URL(r.url()).pathname, type: h['content-type'] || '', encoding: h['content-encoding'] || null });
  });
  await page.goto(`${a.url}/`);
  out.title = await page.title();
  out.manifestHref = await page.getAttribute('link[rel=manifest]', 'href');
  const m = await page.evaluate(async (href) => (await fetch(href)).json(), out.manifestHref);
  out.manifest = { name: m.name, short_name: m.short_name, start_url: m.start_url, scope: m.scope, display: m.display, theme_color: m.theme_color, background_color: m.background_color };
  // Every icon is served and its PNG header matches the declared size.
  out.icons = await page.evaluate(async (icons) => {
    const res = [];
    for (const i of icons) {
      const r = await fetch(i.src);
      const b = new Uint8Array(await r.arrayBuffer());
      const isPng = b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
      const dv = new DataView(b.buffer);
      res.push({ src: i.src, sizes: i.sizes, purpose: i.purpose || 'any', type: r.headers.get('content-type'), status: r.status,
        width: isPng ? dv.getUint32(16) : null, height: isPng ? dv.getUint32(20) : null });
    }
    return res;
  }, m.icons);
  out.themeMeta = await page.getAttribute('meta[name=theme-color]', 'content');
  // Service worker: registered, active, then controlling after a reload.
  await until(page, () => navigator.serviceWorker.ready.then((r) => !!r.active), null, 15000, 'service worker active');
  await page.reload();
  out.controlled = await until(page, () => !!navigator.serviceWorker.controller, null, 10000, 'controller');
  out.swScope = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).scope);
  out.cacheNames = await page.evaluate(() => caches.keys());
  if (a.shot) await page.screenshot({ path: a.shot });
  // Offline: the daemon is gone; the shell must still load, deep links too.
  process.kill(Number(a.pid), 'SIGKILL');
  await until(page, async (u) => { try { await fetch(u + '/healthz', { cache: 'no-store' }); return false; } catch { return true; } }, a.url, 10000, 'daemon gone');
  await page.reload();
  out.offlineTitle = await page.title();
  out.offlineInput = await page.isVisible('[data-testid=bot-id-input]');
  await page.goto(`${a.url}/call/some-bot`);
  out.offlineDeepLink = await page.inputValue('[data-testid=bot-id-input]').catch((e) => `error: ${e.message}`);
  report(out);
} catch (e) {
  out.error = String(e && e.stack || e);
  report(out, 1);
} finally {
  await done();
}
