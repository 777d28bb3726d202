// Recent calls and favourites (pwa/app/store.js) over a fake Storage.
import test from 'node:test';
import assert from 'node:assert/strict';
import { load } from './_load.mjs';

const { createStore, MAX_ENTRIES } = await load('store.js');

function fakeStorage(init = {}) {
  const m = new Map(Object.entries(init));
  return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)), map: m };
}

test('empty storage', () => {
  const s = createStore(fakeStorage());
  assert.deepEqual(s.recent(), []);
  assert.deepEqual(s.favourites(), []);
  assert.equal(s.isFavourite('x'), false);
});

test('recent calls: newest first, bounded', () => {
  const st = fakeStorage();
  const s = createStore(st);
  for (let i = 0; i < 30; i++) s.addRecent({ id: `bot-${i}`, name: `Bot ${i}`, outcome: 'ended', duration: i, at: 1000 + i });
  const r = s.recent();
  assert.equal(r.length, MAX_ENTRIES);
  assert.equal(MAX_ENTRIES, 20);
  assert.equal(r[0].id, 'bot-29');
  assert.deepEqual(r[0], { id: 'bot-29', name: 'Bot 29', at: 1029, outcome: 'ended', duration: 29 });
  assert.equal(JSON.parse(st.map.get('botcall.recent.v1')).length, 20);
  // a fresh store over the same storage sees the same data
  assert.deepEqual(createStore(st).recent(), r);
});

test('invalid ids are not stored', () => {
  const s = createStore(fakeStorage());
  s.addRecent({ id: 'bad id!' });
  s.addRecent({ id: '' });
  assert.equal(s.toggleFavourite('x'.repeat(65)), false);
  assert.deepEqual(s.recent(), []);
  assert.deepEqual(s.favourites(), []);
});

test('favourites toggle, rename, dedupe', () => {
  const s = createStore(fakeStorage());
  assert.equal(s.toggleFavourite('a', 'A'), true);
  assert.equal(s.toggleFavourite('b', 'B'), true);
  assert.equal(s.isFavourite('a'), true);
  assert.deepEqual(s.favourites(), [{ id: 'b', name: 'B' }, { id: 'a', name: 'A' }]);
  s.renameFavourite('a', 'Alpha');
  assert.equal(s.favourites()[1].name, 'Alpha');
  assert.equal(s.toggleFavourite('a'), false);
  assert.deepEqual(s.favourites(), [{ id: 'b', name: 'B' }]);
  for (let i = 0; i < 25; i++) s.toggleFavourite(`f${i}`);
  assert.equal(s.favourites().length, MAX_ENTRIES);
});

test('corrupt or foreign data is tolerated', () => {
  for (const bad of ['{not json', '42', '"str"', 'null', '{"a":1}', '[1, null, "x", {"id": 5}, {"id": "ok", "at": "zzz"}]']) {
    const s = createStore(fakeStorage({ 'botcall.recent.v1': bad, 'botcall.favs.v1': bad }));
    const r = s.recent();
    assert.ok(Array.isArray(r));
    for (const e of r) assert.equal(typeof e.at, 'number');
    assert.ok(Array.isArray(s.favourites()));
    s.addRecent({ id: 'x', name: 'X' });
    assert.equal(s.recent()[0].id, 'x');
  }
  const s = createStore(fakeStorage({ 'botcall.recent.v1': '[{"id":"ok","at":"zzz","name":{"x":1},"duration":-5}]' }));
  assert.deepEqual(s.recent(), [{ id: 'ok', name: '', at: 0, outcome: '', duration: 0 }]);
});

test('a throwing or missing storage does not throw', () => {
  const boom = { getItem() { throw new Error('SecurityError'); }, setItem() { throw new Error('QuotaExceededError'); } };
  for (const st of [boom, null]) {
    const s = createStore(st);
    assert.deepEqual(s.recent(), []);
    s.addRecent({ id: 'x' });
    assert.equal(s.toggleFavourite('x'), true);
    assert.deepEqual(s.favourites(), []);
  }
});
