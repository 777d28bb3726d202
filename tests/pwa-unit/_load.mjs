// Loads a module from pwa/app/. The PWA has no package.json (it is served,
// not built), so on node versions without ES-module syntax detection the
// files are copied to a temporary {"type":"module"} folder first.
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const APP = fileURLToPath(new URL('../../pwa/app/', import.meta.url));
let copy = null;

export async function load(name) {
  try {
    return await import(pathToFileURL(join(APP, name)).href);
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    if (!copy) {
      copy = mkdtempSync(join(tmpdir(), 'botcall-pwa-'));
      cpSync(APP, copy, { recursive: true });
      writeFileSync(join(copy, 'package.json'), '{"type":"module"}');
    }
    return import(pathToFileURL(join(copy, name)).href);
  }
}
