//! Counters and gauges, rendered in the Prometheus text format at `/metrics`.
//!
//! Single-threaded (the daemon runs one event loop), so plain `Cell`s and
//! `RefCell<BTreeMap>`s: no atomics, no locks, label sets bounded by code.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub(crate) struct Counter(Cell<u64>);

impl Counter {
    pub(crate) fn inc(&self) {
        self.add(1);
    }
    pub(crate) fn add(&self, n: u64) {
        self.0.set(self.0.get().wrapping_add(n));
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub(crate) struct Gauge(Cell<i64>);

impl Gauge {
    pub(crate) fn inc(&self) {
        self.0.set(self.0.get() + 1);
    }
    pub(crate) fn dec(&self) {
        self.0.set(self.0.get() - 1);
    }
    pub(crate) fn set(&self, v: i64) {
        self.0.set(v);
    }
    pub(crate) fn get(&self) -> i64 {
        self.0.get()
    }
}

/// Counters keyed by a label tuple. Label values are `&'static str` chosen
/// by our code (never client text), so the set stays bounded.
#[derive(Debug, Default)]
pub(crate) struct Family<K: Ord>(RefCell<BTreeMap<K, u64>>);

impl<K: Ord + Clone> Family<K> {
    pub(crate) fn inc(&self, k: K) {
        *self.0.borrow_mut().entry(k).or_insert(0) += 1;
    }
    pub(crate) fn snapshot(&self) -> Vec<(K, u64)> {
        self.0
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

impl<K: Ord + Clone> Family<K> {
    /// One series' count (tests).
    #[cfg(test)]
    pub(crate) fn get(&self, k: &K) -> u64 {
        self.0.borrow().get(k).copied().unwrap_or(0)
    }
}

/// The `reason` labels of `botcall_calls_ended_total`: who ended a call
/// and why. All are rendered, at 0 until they happen.
pub(crate) const CALL_END_REASONS: [&str; 10] = [
    "caller_hangup",
    "bot_hangup",
    "media_lost",
    "media_timeout",
    "error",
    "ring_timeout",
    "caller_gone",
    "bot_gone",
    "rejected",
    "refused",
];

/// Everything the daemon counts.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) http_requests: Family<(&'static str, u16)>,
    pub(crate) auth_failures: Family<&'static str>,
    pub(crate) rate_limited: Family<&'static str>,
    pub(crate) table_full: Counter,
    pub(crate) store_errors: Counter,
    pub(crate) connections_open: Gauge,
    pub(crate) connections_total: Counter,
    pub(crate) connections_rejected: Counter,
    pub(crate) connections_refused: Family<&'static str>,
    pub(crate) buffer_bytes: Gauge,
    pub(crate) buffer_budget: Gauge,
    pub(crate) buffer_refused: Family<&'static str>,
    pub(crate) ws_message_timeouts: Counter,
    pub(crate) http_timeouts: Counter,
    pub(crate) token_cache_hits: Counter,
    pub(crate) token_cache_misses: Counter,
    pub(crate) ws_bots: Gauge,
    pub(crate) ws_callers: Gauge,
    pub(crate) ws_messages_in: Counter,
    pub(crate) ws_messages_out: Counter,
    pub(crate) ws_errors_sent: Family<&'static str>,
    pub(crate) ws_closed: Family<u16>,
    pub(crate) ws_slow_reader_closed: Counter,
    pub(crate) ws_heartbeat_timeouts: Counter,
    pub(crate) calls_started: Counter,
    pub(crate) calls_ended: Family<&'static str>,
    pub(crate) calls_active: Gauge,
    pub(crate) attestations_signed: Counter,
    pub(crate) pow_verified: Counter,
    pub(crate) pow_failed: Counter,
    pub(crate) stun_requests: Counter,
    pub(crate) stun_dropped: Counter,
    pub(crate) redis_up: Gauge,
    pub(crate) tls_failures: Counter,
    pub(crate) remote_messages: Family<&'static str>,
    /// Web Push messages by event and outcome.
    pub(crate) push_messages: Family<(&'static str, &'static str)>,
    /// Web Push subscription changes and refusals, by outcome.
    pub(crate) push_subscriptions: Family<&'static str>,
    /// Web Push events (a bot online, a callback) by event and outcome.
    pub(crate) push_events: Family<(&'static str, &'static str)>,
    /// Subscriptions in the memory table.
    pub(crate) push_table: Gauge,
}

/// Store-side figures read at render time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct StoreGauges {
    pub(crate) registered: u64,
    pub(crate) online: u64,
    pub(crate) capacity: u64,
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, v: impl std::fmt::Display) {
    head(out, name, kind, help);
    let _ = writeln!(out, "{name} {v}");
}

fn family<K: Ord + Clone>(
    out: &mut String,
    name: &str,
    help: &str,
    f: &Family<K>,
    labels: impl Fn(&K) -> String,
) {
    head(out, name, "counter", help);
    for (k, v) in f.snapshot() {
        let _ = writeln!(out, "{name}{{{}}} {v}", labels(&k));
    }
}

/// Resident set size of this process, in bytes (Linux `/proc/self/statm`).
pub(crate) fn process_rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

impl Metrics {
    /// Prometheus text exposition.
    pub(crate) fn render(&self, store: StoreGauges) -> String {
        let mut o = String::with_capacity(4096);
        single(
            &mut o,
            "botcall_agents_registered",
            "gauge",
            "Agents in the store (not expired).",
            store.registered,
        );
        single(
            &mut o,
            "botcall_agents_online",
            "gauge",
            "Agents with a live bot WebSocket.",
            store.online,
        );
        single(
            &mut o,
            "botcall_agent_table_capacity",
            "gauge",
            "Agent table capacity (memory store).",
            store.capacity,
        );
        family(
            &mut o,
            "botcall_http_requests_total",
            "HTTP requests by route and status.",
            &self.http_requests,
            |(r, s)| format!("route=\"{r}\",status=\"{s}\""),
        );
        family(
            &mut o,
            "botcall_auth_failures_total",
            "Rejected BotAuth tokens by reason.",
            &self.auth_failures,
            |r| format!("reason=\"{r}\""),
        );
        family(
            &mut o,
            "botcall_rate_limited_total",
            "Requests refused by a rate limit, by scope.",
            &self.rate_limited,
            |r| format!("scope=\"{r}\""),
        );
        single(
            &mut o,
            "botcall_table_full_total",
            "counter",
            "Registrations refused because the agent table is full.",
            self.table_full.get(),
        );
        single(
            &mut o,
            "botcall_store_errors_total",
            "counter",
            "Store operations that failed (store unavailable).",
            self.store_errors.get(),
        );
        single(
            &mut o,
            "botcall_connections_open",
            "gauge",
            "Open TCP connections (HTTP and WebSocket).",
            self.connections_open.get(),
        );
        single(
            &mut o,
            "botcall_connections_total",
            "counter",
            "Accepted TCP connections.",
            self.connections_total.get(),
        );
        single(
            &mut o,
            "botcall_connections_rejected_total",
            "counter",
            "Connections refused at max_connections (503).",
            self.connections_rejected.get(),
        );
        family(
            &mut o,
            "botcall_connections_refused_total",
            "Connections refused at accept or upgrade, by reason (max_connections, per_ip).",
            &self.connections_refused,
            |r| format!("reason=\"{r}\""),
        );
        single(
            &mut o,
            "botcall_buffer_bytes",
            "gauge",
            "Bytes connections hold in buffers (partial messages, queues, requests).",
            self.buffer_bytes.get(),
        );
        single(
            &mut o,
            "botcall_buffer_budget_bytes",
            "gauge",
            "The buffer budget (buffer_budget).",
            self.buffer_budget.get(),
        );
        family(
            &mut o,
            "botcall_buffer_refused_total",
            "Buffers refused because the budget was spent, by kind (ws_in, ws_out, http).",
            &self.buffer_refused,
            |k| format!("kind=\"{k}\""),
        );
        single(
            &mut o,
            "botcall_ws_message_timeouts_total",
            "counter",
            "WebSockets closed because a started message did not complete within header_timeout.",
            self.ws_message_timeouts.get(),
        );
        single(
            &mut o,
            "botcall_http_timeouts_total",
            "counter",
            "HTTP connections closed by header/idle timeouts.",
            self.http_timeouts.get(),
        );
        single(
            &mut o,
            "botcall_token_cache_hits_total",
            "counter",
            "BotAuth verifications served from the cache.",
            self.token_cache_hits.get(),
        );
        single(
            &mut o,
            "botcall_token_cache_misses_total",
            "counter",
            "BotAuth verifications that checked a signature.",
            self.token_cache_misses.get(),
        );
        head(
            &mut o,
            "botcall_ws_open",
            "gauge",
            "Open WebSockets that said hello, by role.",
        );
        let _ = writeln!(o, "botcall_ws_open{{role=\"bot\"}} {}", self.ws_bots.get());
        let _ = writeln!(
            o,
            "botcall_ws_open{{role=\"caller\"}} {}",
            self.ws_callers.get()
        );
        single(
            &mut o,
            "botcall_ws_messages_in_total",
            "counter",
            "WebSocket messages received.",
            self.ws_messages_in.get(),
        );
        single(
            &mut o,
            "botcall_ws_messages_out_total",
            "counter",
            "WebSocket messages sent.",
            self.ws_messages_out.get(),
        );
        family(
            &mut o,
            "botcall_ws_errors_sent_total",
            "WebSocket error messages sent, by code.",
            &self.ws_errors_sent,
            |c| format!("code=\"{c}\""),
        );
        family(
            &mut o,
            "botcall_ws_closed_total",
            "WebSockets closed, by close code.",
            &self.ws_closed,
            |c| format!("code=\"{c}\""),
        );
        single(
            &mut o,
            "botcall_ws_slow_reader_closed_total",
            "counter",
            "Sockets closed (1013) because their outbound queue was full.",
            self.ws_slow_reader_closed.get(),
        );
        single(
            &mut o,
            "botcall_ws_heartbeat_timeouts_total",
            "counter",
            "Sockets closed after 2.5 silent heartbeat intervals.",
            self.ws_heartbeat_timeouts.get(),
        );
        single(
            &mut o,
            "botcall_calls_started_total",
            "counter",
            "Calls offered to a bot.",
            self.calls_started.get(),
        );
        head(
            &mut o,
            "botcall_calls_ended_total",
            "counter",
            "Calls ended, by who ended them and why.",
        );
        let ended = self.calls_ended.snapshot();
        for r in CALL_END_REASONS {
            let n = ended.iter().find(|(k, _)| *k == r).map_or(0, |(_, n)| *n);
            let _ = writeln!(o, "botcall_calls_ended_total{{reason=\"{r}\"}} {n}");
        }
        single(
            &mut o,
            "botcall_calls_active",
            "gauge",
            "Calls ringing or answered.",
            self.calls_active.get(),
        );
        single(
            &mut o,
            "botcall_attestations_signed_total",
            "counter",
            "Human attestations signed.",
            self.attestations_signed.get(),
        );
        single(
            &mut o,
            "botcall_pow_verified_total",
            "counter",
            "Proof-of-work checks passed.",
            self.pow_verified.get(),
        );
        single(
            &mut o,
            "botcall_pow_failed_total",
            "counter",
            "Proof-of-work checks failed.",
            self.pow_failed.get(),
        );
        single(
            &mut o,
            "botcall_stun_requests_total",
            "counter",
            "STUN Binding requests answered.",
            self.stun_requests.get(),
        );
        single(
            &mut o,
            "botcall_stun_dropped_total",
            "counter",
            "UDP datagrams on the STUN port not answered.",
            self.stun_dropped.get(),
        );
        single(
            &mut o,
            "botcall_redis_up",
            "gauge",
            "1 when the Redis store is reachable (0 otherwise or unused).",
            self.redis_up.get(),
        );
        family(
            &mut o,
            "botcall_remote_messages_total",
            "Signaling messages relayed through Redis, by direction.",
            &self.remote_messages,
            |d| format!("direction=\"{d}\""),
        );
        single(
            &mut o,
            "botcall_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed or timed out.",
            self.tls_failures.get(),
        );
        single(
            &mut o,
            "botcall_process_resident_memory_bytes",
            "gauge",
            "Resident set size.",
            process_rss_bytes(),
        );
        self.render_push(&mut o);
        o
    }

    /// The Web Push series.
    fn render_push(&self, o: &mut String) {
        family(
            o,
            "botcall_push_messages_total",
            "Web Push messages by event (online, callback) and outcome (delivered, gone, retried, rejected, expired, forbidden, failed, queue_full).",
            &self.push_messages,
            |(e, r)| format!("event=\"{e}\",outcome=\"{r}\""),
        );
        family(
            o,
            "botcall_push_subscriptions_total",
            "Web Push subscription changes (added, renewed, removed, removed_gone) and refusals (by error code).",
            &self.push_subscriptions,
            |r| format!("outcome=\"{r}\""),
        );
        family(
            o,
            "botcall_push_events_total",
            "Web Push events by kind (online, callback) and outcome (sent, debounced, not_subscribed, rate_limited, store_error).",
            &self.push_events,
            |(e, r)| format!("event=\"{e}\",outcome=\"{r}\""),
        );
        single(
            o,
            "botcall_push_subscriptions",
            "gauge",
            "Web Push subscriptions in the memory table (0 on a Redis store).",
            self.push_table.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.http_requests.inc(("lookup", 200));
        m.http_requests.inc(("lookup", 200));
        m.auth_failures.inc("expired");
        m.ws_closed.inc(1013);
        let text = m.render(StoreGauges {
            registered: 3,
            online: 1,
            capacity: 10,
        });
        assert!(text.contains("botcall_http_requests_total{route=\"lookup\",status=\"200\"} 2\n"));
        assert!(text.contains("botcall_auth_failures_total{reason=\"expired\"} 1\n"));
        assert!(text.contains("botcall_agents_registered 3\n"));
        assert!(text.contains("botcall_ws_closed_total{code=\"1013\"} 1\n"));
        // Every sample line belongs to a declared metric.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} undeclared"
            );
        }
    }
}
