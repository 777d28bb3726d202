//! The timing of one call's media, sans-IO: the STUN probes that learn the
//! server-reflexive candidate (retransmits, and when end-of-candidates may
//! go out), and liveness (the connect timeout, media lost). Time and
//! datagrams are passed in, requests and verdicts handed back; the media
//! task ([`super::media`]) owns the socket and str0m. Tested on a fake clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::EndReason;
use crate::client::Rng;
use crate::stun;

/// STUN binding retransmits for the srflx candidate.
pub(super) const STUN_TRIES: u32 = 3;
/// How long ICE + DTLS may take after the answer.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Deadlines are armed this much late, so the check at wake-up sees them passed.
const SLACK: Duration = Duration::from_millis(10);

/// A STUN server to ask for our reflexive address.
#[derive(Debug)]
struct StunProbe {
    server: SocketAddr,
    txid: [u8; 12],
    next_at: Instant,
    tries: u32,
}

/// The STUN probes of one call.
#[derive(Debug)]
pub(super) struct Gatherer {
    probes: Vec<StunProbe>,
    started: Instant,
    /// End-of-candidates went out.
    done: bool,
}

impl Gatherer {
    /// Probes for `servers` (random transaction ids from `rng`), the first
    /// of each due at `now`.
    pub(super) fn new(servers: Vec<SocketAddr>, rng: &mut Rng, now: Instant) -> Self {
        let probes = servers
            .into_iter()
            .map(|server| {
                let mut txid = [0u8; 12];
                txid[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
                txid[8..].copy_from_slice(&(rng.next_u64() as u32).to_le_bytes());
                StunProbe {
                    server,
                    txid,
                    next_at: now,
                    tries: 0,
                }
            })
            .collect();
        Gatherer {
            probes,
            started: now,
            done: false,
        }
    }

    /// A Binding request due at `now` and where it goes (counted as a try:
    /// the next one waits 500 ms, then 1 s). Call until `None`.
    pub(super) fn poll_transmit(
        &mut self,
        now: Instant,
    ) -> Option<(SocketAddr, [u8; stun::REQUEST_LEN])> {
        let p = self
            .probes
            .iter_mut()
            .find(|p| p.tries < STUN_TRIES && now >= p.next_at)?;
        p.tries += 1;
        p.next_at = now + Duration::from_millis(250 << p.tries);
        Some((p.server, stun::binding_request(&p.txid)))
    }

    /// When the next request is due.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.probes
            .iter()
            .filter(|p| p.tries < STUN_TRIES)
            .map(|p| p.next_at)
            .min()
    }

    /// A datagram from `from` at `now`: `Some(mapped)` if it is the Binding
    /// success for one of our probes (which is then done), `None` if not.
    pub(super) fn handle_datagram(
        &mut self,
        buf: &[u8],
        from: SocketAddr,
        now: Instant,
    ) -> Option<SocketAddr> {
        if !stun::is_stun(buf) {
            return None;
        }
        let (p, mapped) = self.probes.iter_mut().find_map(|p| {
            let m = (p.server == from)
                .then(|| stun::parse_binding_response(buf, &p.txid).ok())
                .flatten()?;
            Some((p, m))
        })?;
        p.tries = STUN_TRIES;
        p.next_at = now;
        Some(mapped)
    }

    /// When end-of-candidates goes out: once every probe is answered or
    /// used up (its last wait over) and no TURN allocation is pending
    /// (`relays_pending`). `None` while that is not known, or once sent.
    pub(super) fn end_of_candidates_due(&self, relays_pending: bool) -> Option<Instant> {
        if self.done || relays_pending || self.probes.iter().any(|p| p.tries < STUN_TRIES) {
            return None;
        }
        Some(
            self.probes
                .iter()
                .map(|p| p.next_at)
                .max()
                .unwrap_or(self.started),
        )
    }

    /// `true` once, when end-of-candidates is due at `now`.
    pub(super) fn poll_end_of_candidates(&mut self, now: Instant, relays_pending: bool) -> bool {
        if self
            .end_of_candidates_due(relays_pending)
            .is_some_and(|t| now >= t)
        {
            self.done = true;
            return true;
        }
        false
    }
}

/// Whether one call's media is alive.
#[derive(Debug)]
pub(super) struct Liveness {
    started: Instant,
    connected: bool,
    /// The last datagram from the caller that str0m took (RTP, RTCP, STUN).
    last_heard: Instant,
    disconnected_since: Option<Instant>,
    media_timeout: Duration,
}

impl Liveness {
    /// A call answered at `now`, whose connected media may stop for `media_timeout`.
    pub(super) fn new(media_timeout: Duration, now: Instant) -> Self {
        Liveness {
            started: now,
            connected: false,
            last_heard: now,
            disconnected_since: None,
            media_timeout,
        }
    }

    /// ICE and DTLS are up.
    pub(super) fn on_connected(&mut self, now: Instant) {
        self.connected = true;
        self.last_heard = now;
    }

    /// A datagram from the caller was taken.
    pub(super) fn on_heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// ICE went disconnected (`true`) or connected again (`false`).
    pub(super) fn on_ice_disconnected(&mut self, disconnected: bool, now: Instant) {
        if disconnected {
            self.disconnected_since.get_or_insert(now);
        } else {
            self.disconnected_since = None;
        }
    }

    /// When connected media counts as lost: `media_timeout` after ICE went
    /// disconnected or after the last datagram from the caller, whichever
    /// is earlier. `None` before media connected.
    fn media_lost_at(&self) -> Option<Instant> {
        if !self.connected {
            return None;
        }
        let silent = self.last_heard + self.media_timeout;
        Some(match self.disconnected_since {
            Some(d) => silent.min(d + self.media_timeout),
            None => silent,
        })
    }

    /// Why the call must end at `now`, if it must: media never connected
    /// within [`CONNECT_TIMEOUT`], or connected media was lost.
    pub(super) fn check(&self, now: Instant) -> Option<EndReason> {
        if !self.connected && now.duration_since(self.started) > CONNECT_TIMEOUT {
            return Some(EndReason::MediaTimeout);
        }
        if self.media_lost_at().is_some_and(|t| now >= t) {
            return Some(EndReason::MediaLost);
        }
        None
    }

    /// When [`Liveness::check`] may next say something.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if !self.connected {
            return Some(self.started + CONNECT_TIMEOUT + SLACK);
        }
        self.media_lost_at().map(|t| t + SLACK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A Binding success for `req` (its transaction id) mapping to `mapped`.
    fn answer(req: &[u8], mapped: SocketAddr) -> Vec<u8> {
        let txid: [u8; 12] = req[8..20].try_into().unwrap();
        let mut buf = [0u8; 64];
        let mut w =
            stun::MessageWriter::new(&mut buf, stun::method::BINDING, stun::Class::Success, &txid)
                .unwrap();
        w.xor_addr(stun::attr::XOR_MAPPED_ADDRESS, mapped).unwrap();
        let n = w.finish();
        buf[..n].to_vec()
    }

    #[test]
    fn probes_retransmit_then_end_of_candidates() {
        let t0 = Instant::now();
        let (a, b): (SocketAddr, SocketAddr) = (
            "192.0.2.1:3478".parse().unwrap(),
            "192.0.2.2:3478".parse().unwrap(),
        );
        let mut g = Gatherer::new(vec![a, b], &mut Rng::new(7), t0);
        // Both due at once, then 500 ms, then 1 s later; three tries each.
        let first: Vec<_> = std::iter::from_fn(|| g.poll_transmit(t0)).collect();
        assert_eq!(first.iter().map(|f| f.0).collect::<Vec<_>>(), [a, b]);
        assert_eq!(g.poll_timeout(), Some(t0 + ms(500)));
        assert_eq!(g.end_of_candidates_due(false), None);
        // B answers; A keeps trying.
        let mapped: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let reply = answer(&first[1].1, mapped);
        assert_eq!(
            g.handle_datagram(&reply, a, t0),
            None,
            "from the wrong server"
        );
        assert_eq!(g.handle_datagram(&reply, b, t0 + ms(20)), Some(mapped));
        assert_eq!(g.handle_datagram(b"not stun", b, t0), None);
        assert_eq!(g.poll_transmit(t0 + ms(499)), None);
        assert_eq!(g.poll_transmit(t0 + ms(500)).map(|f| f.0), Some(a));
        assert_eq!(g.poll_timeout(), Some(t0 + ms(1500)));
        assert_eq!(g.poll_transmit(t0 + ms(1500)).map(|f| f.0), Some(a));
        assert_eq!(g.poll_timeout(), None, "A is used up");
        // End-of-candidates after A's last wait, and not while TURN is pending.
        let eoc = t0 + ms(1500) + ms(2000);
        assert_eq!(g.end_of_candidates_due(true), None);
        assert_eq!(g.end_of_candidates_due(false), Some(eoc));
        assert!(!g.poll_end_of_candidates(eoc - ms(1), false));
        assert!(g.poll_end_of_candidates(eoc, false));
        assert!(!g.poll_end_of_candidates(eoc, false), "only once");
        // No STUN servers (relay only): due at the start, once TURN is done.
        let mut g = Gatherer::new(vec![], &mut Rng::new(1), t0);
        assert_eq!(g.poll_transmit(t0), None);
        assert!(!g.poll_end_of_candidates(t0, true));
        assert!(g.poll_end_of_candidates(t0, false));
    }

    #[test]
    fn connect_timeout_and_media_lost_on_a_fake_clock() {
        let t0 = Instant::now();
        let l = Liveness::new(Duration::from_secs(5), t0);
        assert_eq!(l.poll_timeout(), Some(t0 + CONNECT_TIMEOUT + SLACK));
        assert_eq!(l.check(t0 + CONNECT_TIMEOUT), None);
        assert_eq!(
            l.check(t0 + CONNECT_TIMEOUT + ms(1)),
            Some(EndReason::MediaTimeout)
        );
        let mut l = Liveness::new(Duration::from_secs(5), t0);
        l.on_connected(t0 + ms(300));
        l.on_heard(t0 + CONNECT_TIMEOUT);
        assert_eq!(
            l.check(t0 + CONNECT_TIMEOUT + ms(1)),
            None,
            "connected in time"
        );
        l.on_heard(t0 + ms(1000)); // the time is whatever the task says
        // Silence: lost 5 s after the last datagram.
        assert_eq!(l.poll_timeout(), Some(t0 + ms(6000) + SLACK));
        assert_eq!(l.check(t0 + ms(5999)), None);
        assert_eq!(l.check(t0 + ms(6000)), Some(EndReason::MediaLost));
        // ICE disconnected earlier than the silence: that counts first; the
        // first disconnect time is kept; connected again clears it.
        l.on_heard(t0 + ms(9000));
        l.on_ice_disconnected(true, t0 + ms(2000));
        l.on_ice_disconnected(true, t0 + ms(8000));
        assert_eq!(l.check(t0 + ms(7000)), Some(EndReason::MediaLost));
        l.on_ice_disconnected(false, t0 + ms(8500));
        assert_eq!(l.check(t0 + ms(13_999)), None);
        assert_eq!(l.check(t0 + ms(14_000)), Some(EndReason::MediaLost));
    }
}
