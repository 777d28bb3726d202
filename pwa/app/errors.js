/**
 * User-facing text for every way a lookup or call can fail: daemon error
 * codes (docs/protocol.md), getUserMedia errors and local conditions.
 * describe() returns {code, message, retry} where `retry` says whether a
 * Retry button makes sense.
 */

const NO_RETRY = new Set(['not_found', 'invalid_agent_id', 'insecure', 'unsupported_challenge', 'bad_request']);

/** Text for `code`; `bot` is the display name, `detail` extra server text. */
export function describe(code, { bot = 'The bot', detail = '' } = {}) {
  const d = detail ? ` (${detail})` : '';
  const text = {
    not_found: `${bot} was not found. Check the bot id.`,
    invalid_agent_id: 'That is not a valid bot id: use 1–64 letters, digits, “.”, “_” or “-”.',
    offline: `${bot} is offline right now. Try again later.`,
    busy: `${bot} is busy on another call. Try again in a minute.`,
    rejected: `${bot} rejected the call${detail ? `: ${detail}` : '.'}`,
    no_answer: `${bot} did not answer.`,
    peer_gone: `${bot} went away before the call could start.`,
    mic_denied: 'Microphone permission denied. Allow microphone access for this site in your browser settings, then retry.',
    no_mic: 'No microphone found. Connect a microphone or headset, then retry.',
    mic_busy: 'The microphone could not be started. Another app may be using it.',
    insecure: 'Calling needs a secure (HTTPS) page and a browser with WebRTC and microphone support.',
    human_check_failed: 'Human check failed. Retry to get a new challenge.',
    human_check_required: 'The server asked for a human check that could not be completed.',
    unsupported_challenge: 'This server uses a human check this app does not support.',
    network_lost: `Network connection lost${d}. Check your connection and retry.`,
    ice_failed: 'Network connection lost: the audio path to the bot could not be set up or broke (a firewall may block it).',
    network: 'Could not reach the server. Check your connection.',
    timeout: 'The server took too long to answer.',
    rate_limited: 'Too many attempts. Wait a moment, then retry.',
    too_many_calls: 'You have too many calls open. Close other BotCall tabs and retry.',
    server_busy: 'The server is busy. Try again later.',
    table_full: 'The server is busy. Try again later.',
    server_shutdown: 'The server is restarting. Try again in a moment.',
    policy: 'The server closed the connection.',
    answer_unverified: `Call refused: the answer did not come from ${bot}${detail ? `: ${detail}` : ''}. The server may be tampering with the call, so no audio was connected.`,
    unsupported_version: 'This app is out of date for the server. Reload the page.',
    push_disabled: 'This server does not send notifications.',
    too_many_subscriptions: 'Too many notification sign-ups from your network. Turn some off first.',
    push_failed: `Notifications could not be turned on${d}.`,
  }[code];
  return {
    code,
    message: text || `The server reported an error: ${detail || code} [${code}]`,
    retry: !NO_RETRY.has(code),
  };
}

/** Map a getUserMedia DOMException to one of our codes. */
export function micErrorCode(e) {
  switch (e && e.name) {
    case 'NotAllowedError': case 'SecurityError': case 'PermissionDeniedError': return 'mic_denied';
    case 'NotFoundError': case 'OverconstrainedError': case 'DevicesNotFoundError': return 'no_mic';
    default: return 'mic_busy';
  }
}
