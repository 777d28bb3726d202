/**
 * Human check (proof of work) from the UI's side: takes the `challenge`
 * object of a caller `welcome` (or of a `human_check_required` error), solves
 * it in a Web Worker (pow-worker.js) and resolves with the `proof` object to
 * put in the `call` message. Falls back to solving on the main thread in
 * small slices when module workers are unavailable.
 */
import { createSolver, randomStart } from './pow-worker.js';

/** Error thrown for challenges this client cannot solve or when aborted. */
export class PowError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

/**
 * Solve `challenge` ({method:'pow', alg:'sha256', challenge, difficulty}).
 * onProgress(fraction 0..1, tried, expected) is called as work proceeds.
 * `signal` (AbortSignal) cancels. Resolves {method:'pow', challenge, nonce}.
 */
export function solvePow(challenge, { onProgress = () => {}, signal } = {}) {
  const c = challenge || {};
  if (c.method !== 'pow' || (c.alg && c.alg !== 'sha256') || typeof c.challenge !== 'string' ||
      !Number.isInteger(c.difficulty) || c.difficulty < 0 || c.difficulty > 64) {
    return Promise.reject(new PowError('unsupported_challenge', 'Unsupported human check.'));
  }
  const expected = 2 ** c.difficulty;
  const report = (tried) => onProgress(1 - Math.exp(-tried / expected), tried, expected);
  const proof = (nonce) => ({ method: 'pow', challenge: c.challenge, nonce });
  return new Promise((resolve, reject) => {
    let worker = null;
    let stopped = false;
    const finish = (fn, v) => {
      if (stopped) return;
      stopped = true;
      if (worker) worker.terminate();
      signal?.removeEventListener('abort', onAbort);
      fn(v);
    };
    const onAbort = () => finish(reject, new PowError('aborted', 'Human check cancelled.'));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort);

    const mainThread = () => {
      worker = null;
      let s;
      try { s = createSolver(c.challenge, c.difficulty, { start: randomStart() }); } catch (e) {
        return finish(reject, new PowError('unsupported_challenge', e.message));
      }
      const slice = () => {
        if (stopped) return;
        const nonce = s.step(4096);
        report(s.tried);
        if (nonce) finish(resolve, proof(nonce));
        else setTimeout(slice, 0);
      };
      slice();
    };

    try {
      worker = new Worker(new URL('./pow-worker.js', import.meta.url), { type: 'module' });
    } catch {
      return mainThread();
    }
    let heard = false;
    worker.onmessage = ({ data }) => {
      heard = true;
      if (data.type === 'progress') report(data.tried);
      else if (data.type === 'done') { report(data.tried); finish(resolve, proof(data.nonce)); }
      else finish(reject, new PowError('unsupported_challenge', data.message));
    };
    // A worker that fails to load (no module-worker support) falls back.
    worker.onerror = (e) => {
      e.preventDefault?.();
      if (!heard && !stopped) { worker.terminate(); mainThread(); }
      else finish(reject, new PowError('worker_failed', 'Human check failed to run.'));
    };
    worker.postMessage({ challenge: c.challenge, difficulty: c.difficulty });
  });
}
