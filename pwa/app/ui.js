/**
 * Small DOM and formatting helpers for main.js: an element builder that
 * never parses HTML (bot names are untrusted text), relative times, call
 * clock and the level-meter scale.
 */

/** h('li', {class: 'x'}, child, 'text', …) → Element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago" or a date. */
export function ago(ms, now = Date.now()) {
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 7 * 86400) return `${Math.floor(s / 86400)} d ago`;
  return new Date(ms).toLocaleDateString();
}

/** Seconds → "mm:ss" (or "h:mm:ss" from one hour). */
export function clock(seconds) {
  const t = Math.max(0, Math.floor(seconds));
  const p = (n) => String(n).padStart(2, '0');
  const hh = Math.floor(t / 3600);
  return hh ? `${hh}:${p(Math.floor(t / 60) % 60)}:${p(t % 60)}` : `${p(Math.floor(t / 60))}:${p(t % 60)}`;
}

/** A stable avatar colour class ("hue0".."hue5") for an id. */
export function hue(id) {
  let x = 0;
  for (const c of String(id)) x = (x * 31 + c.charCodeAt(0)) >>> 0;
  return `hue${x % 6}`;
}

/** RMS 0..1 → meter position 0..1 on a 60 dB scale. */
export function levelToUnit(rms) {
  if (!(rms > 0)) return 0;
  return Math.min(1, Math.max(0, (20 * Math.log10(rms) + 60) / 60));
}
