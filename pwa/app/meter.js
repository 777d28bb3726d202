/**
 * Speaker level meter: an AnalyserNode fed straight from the remote
 * MediaStream (createMediaStreamSource), so it works even when the <audio>
 * element's output is muted. unlockAudio() must run synchronously inside
 * the Call button's click handler (iOS/Safari and autoplay policies only
 * let a user gesture start an AudioContext).
 */

let ctx = null;

/** Create or resume the shared AudioContext; call from a click handler. */
export function unlockAudio() {
  const AC = globalThis.AudioContext || globalThis.webkitAudioContext;
  if (!AC) return null;
  try {
    if (!ctx || ctx.state === 'closed') ctx = new AC();
    if (ctx.state !== 'running') ctx.resume().catch(() => {});
  } catch { ctx = null; }
  return ctx;
}

/**
 * Measure the RMS level (0..1) of `stream` about 20 times a second and call
 * onLevel(rms). Returns a stop() function.
 */
export function startMeter(stream, onLevel) {
  const ac = ctx || unlockAudio();
  if (!ac || !stream) return () => {};
  let src, an;
  try {
    src = ac.createMediaStreamSource(stream);
    an = ac.createAnalyser();
    an.fftSize = 1024;
    an.smoothingTimeConstant = 0;
    src.connect(an); // not connected onward: the <audio> element plays it
  } catch {
    return () => {};
  }
  const buf = new Float32Array(an.fftSize);
  const tick = () => {
    if (ac.state === 'suspended') ac.resume().catch(() => {});
    an.getFloatTimeDomainData(buf);
    let sum = 0;
    for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
    onLevel(Math.min(1, Math.sqrt(sum / buf.length)));
  };
  const timer = setInterval(tick, 50);
  return () => {
    clearInterval(timer);
    try { src.disconnect(); } catch { /* ignore */ }
  };
}
