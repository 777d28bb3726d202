/**
 * Recent calls and favourite bots, kept in localStorage (keys
 * `botcall.recent.v1`, `botcall.favs.v1`), newest first, at most 20 each.
 * Corrupt JSON, wrong shapes and an unavailable/full storage are tolerated:
 * reads then yield [] and writes are dropped.
 */

export const MAX_ENTRIES = 20;
const RECENT = 'botcall.recent.v1';
const FAVS = 'botcall.favs.v1';
const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

function str(v, max = 64) { return typeof v === 'string' ? v.slice(0, max) : ''; }

/** Create a store over a Storage-like object (getItem/setItem). */
export function createStore(storage = defaultStorage()) {
  function read(key) {
    try {
      const v = JSON.parse(storage?.getItem(key) ?? '[]');
      return Array.isArray(v) ? v.filter((e) => e && typeof e === 'object' && ID_RE.test(e.id)) : [];
    } catch { return []; }
  }
  function write(key, list) {
    try { storage?.setItem(key, JSON.stringify(list.slice(0, MAX_ENTRIES))); } catch { /* quota, private mode */ }
  }
  return {
    /** [{id, name, at (ms epoch), outcome, duration (s)}], newest first. */
    recent() {
      return read(RECENT).slice(0, MAX_ENTRIES).map((e) => ({
        id: e.id, name: str(e.name), at: Number(e.at) || 0,
        outcome: str(e.outcome, 32), duration: Math.max(0, Number(e.duration) || 0),
      }));
    },
    addRecent({ id, name = '', outcome = '', duration = 0, at = Date.now() }) {
      if (!ID_RE.test(id)) return;
      write(RECENT, [{ id, name: str(name), at, outcome: str(outcome, 32), duration }, ...read(RECENT)]);
    },
    clearRecent() { write(RECENT, []); },
    /** [{id, name}], most recently starred first. */
    favourites() {
      const seen = new Set();
      return read(FAVS).filter((e) => !seen.has(e.id) && seen.add(e.id))
        .slice(0, MAX_ENTRIES).map((e) => ({ id: e.id, name: str(e.name) }));
    },
    isFavourite(id) { return read(FAVS).some((e) => e.id === id); },
    /** Star or unstar `id`; returns the new state. */
    toggleFavourite(id, name = '') {
      if (!ID_RE.test(id)) return false;
      const rest = read(FAVS).filter((e) => e.id !== id);
      const on = rest.length === read(FAVS).length;
      write(FAVS, on ? [{ id, name: str(name) }, ...rest] : rest);
      return on;
    },
    /** Refresh the stored display name of a favourite. */
    renameFavourite(id, name) {
      const list = read(FAVS);
      const e = list.find((x) => x.id === id);
      if (e && name && e.name !== name) { e.name = str(name); write(FAVS, list); }
    },
  };
}

function defaultStorage() {
  try { return globalThis.localStorage ?? null; } catch { return null; }
}
