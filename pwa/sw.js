/**
 * BotCall service worker.
 * - install: precache the app shell under a versioned cache, skipWaiting.
 * - activate: delete other botcall-* caches, clients.claim.
 * - shell files: cache first, refreshed in the background (so a new daemon
 *   build is picked up on the next load even if VERSION was left as is).
 * - navigations ("/", "/call/<id>", …): network first, cached shell offline.
 * - API and WebSocket paths: never touched (network only).
 * - push: show the daemon's notification ({title, body, url}); a tap opens
 *   (or focuses) the PWA on its `url`, always a "/call/<id>" page.
 */
const VERSION = '__BOTCALL_BUILD__'; // replaced by botcalld's build.rs with the shell's content hash
const CACHE = `botcall-${VERSION}`;
const SHELL = [
  '/', '/app.css', '/manifest.json', '/icon.svg', '/icon-192.png', '/icon-512.png', '/icon-maskable-512.png',
  '/app/main.js', '/app/api.js', '/app/call.js', '/app/signal.js', '/app/pow.js', '/app/pow-worker.js',
  '/app/meter.js', '/app/store.js', '/app/errors.js', '/app/ui.js', '/app/answer-sig.js', '/app/push.js',
];
const NETWORK_ONLY = /^\/(lookup|agents|register|v1|ws|healthz|metrics|\.well-known)(\/|$)/;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((c) => c.addAll(SHELL.map((u) => new Request(u, { cache: 'reload' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('botcall-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

/** Fetch `req` bypassing the HTTP cache's freshness (ETag revalidation) and store it under `key`. */
async function refresh(req, key) {
  const res = await fetch(req, { cache: 'no-cache' });
  if (res.ok && res.type === 'basic') {
    const c = await caches.open(CACHE);
    await c.put(key, res.clone());
  }
  return res;
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || NETWORK_ONLY.test(url.pathname)) return;

  if (req.mode === 'navigate' && /^\/(index\.html)?$|^\/call\/[^/]+\/?$/.test(url.pathname)) {
    // Every page is the same shell: keep the freshest copy under "/".
    event.respondWith(
      refresh(req, '/').catch(async () => (await caches.match('/')) || Response.error()),
    );
    return;
  }

  if (SHELL.includes(url.pathname)) {
    event.respondWith((async () => {
      const cached = await caches.match(url.pathname);
      const fresh = refresh(url.pathname, url.pathname);
      if (cached) {
        event.waitUntil(fresh.catch(() => {}));
        return cached;
      }
      return fresh;
    })());
  }
});

self.addEventListener('push', (event) => {
  let d = {};
  try { d = event.data ? event.data.json() : {}; } catch { /* not JSON: a plain notice */ }
  const url = typeof d.url === 'string' && /^\/call\/[A-Za-z0-9._-]{1,64}$/.test(d.url) ? d.url : '/';
  event.waitUntil(self.registration.showNotification(String(d.title || 'BotCall'), {
    body: String(d.body || ''), icon: '/icon-192.png', badge: '/icon-192.png',
    tag: `${d.type}-${d.agent_id}`, data: { url },
  }));
});

/** A tap on notification `n`: load its page in an open PWA window (fresh,
 * so the bot's status is current), or open one. */
self.openNotification = async (n) => {
  const url = new URL(n.data?.url || '/', self.location.origin).href;
  n.close();
  for (const w of await self.clients.matchAll({ type: 'window' })) {
    const c = await w.navigate(url).catch(() => null);
    if (c) return c.focus().catch(() => c);
  }
  return self.clients.openWindow(url);
};

self.addEventListener('notificationclick', (event) => event.waitUntil(self.openNotification(event.notification)));
