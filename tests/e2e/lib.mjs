// Shared browser setup for the PWA tests: Debian's chromium driven by
// playwright-core, with the flags verified on this machine
// (../shared/notes/webrtc-e2e.md): loopback ICE, fake media devices, a WAV
// file as the microphone, no background networking.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.BOTCALL_CHROMIUM || '/usr/lib/chromium/chromium';

export function args(argv = process.argv.slice(2)) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

/** A fresh persistent context (a service worker needs one); closes and cleans up via `done()`. */
export async function launch({ wav } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'botcall-chromium-'));
  const flags = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
    '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required',
  ];
  if (wav) flags.push(`--use-file-for-fake-audio-capture=${wav}`);
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM, headless: true, args: flags, viewport: { width: 390, height: 800 },
    deviceScaleFactor: 2,
  });
  const done = async () => {
    await context.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  return { context, done };
}

/** Polls `fn` (in the page) until truthy; returns its value. `ms` only ends a
 * wait that will never succeed, so it is at least 60 s: a loaded machine must
 * not change the verdict (a test that proves a deadline measures it itself). */
export async function until(page, fn, arg, ms, what) {
  ms = Math.max(ms, 60000);
  const t0 = Date.now();
  for (;;) {
    const v = await page.evaluate(fn, arg).catch(() => null);
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Prints one JSON result line for the Rust test to read, then exits. */
export function report(obj, code = 0) {
  process.stdout.write(`RESULT ${JSON.stringify(obj)}\n`);
  process.exitCode = code;
}
