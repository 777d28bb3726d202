//! The push tasks: loading the VAPID key at start, the dispatcher that
//! keeps at most `push_concurrency` requests in flight, one attempt and its
//! verdict, and the two events (a bot online here, a bot's `callback`).

use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Timer;
use botcall_core::id::AgentId;
use botcall_core::json::Writer;

#[cfg(feature = "redis")]
use super::shared;
use super::subs::{self, Events, Sub};
use super::vapid::{self, Vapid};
use super::{Job, client, ece, sched};
use crate::app::App;
use crate::store::AgentStore;

/// Loads (or makes) the VAPID key, shares it through Redis, and starts the
/// sender. Does nothing while `push_subject` is empty.
pub(crate) async fn start(app: &Rc<App>) -> Result<(), String> {
    let cfg = &app.push.cfg;
    if !cfg.enabled() {
        crate::log_info!(
            "Web Push is off: set push_subject = \"mailto:you@your.domain\" to turn it on"
        );
        return Ok(());
    }
    let path = cfg
        .vapid_key
        .clone()
        .unwrap_or_else(|| app.cfg.state_dir.join("vapid.jwk"));
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    let (mut key, created) = Vapid::load_or_create(&path)?;
    if created {
        crate::log_info!("generated VAPID key {}", path.display());
    }
    #[cfg(feature = "redis")]
    if let Some(r) = app.store.redis() {
        let mine = vapid::key_jwk(&key);
        let theirs = shared::cluster_vapid_key(r, &mine)
            .await
            .map_err(|_| "push: cannot read the cluster's VAPID key from Redis".to_string())?;
        if theirs != mine {
            key = vapid::parse_key(&theirs).map_err(|e| format!("bc:push:vapid in Redis: {e}"))?;
            // Kept here too: if Redis loses it, this daemon puts it back.
            crate::auth::attest::write_private(&path, &theirs)?;
            crate::log_info!(
                "using the cluster's VAPID key (saved to {})",
                path.display()
            );
        }
    }
    let v = Vapid::new(key, &cfg.subject);
    crate::log_info!(
        "Web Push on: VAPID key {} (sub {})",
        v.public(),
        cfg.subject
    );
    *app.push.vapid.borrow_mut() = Some(Rc::new(v));
    app.spawn(dispatch_loop(app.clone()));
    Ok(())
}

/// Starts queued jobs while fewer than `push_concurrency` are in flight.
async fn dispatch_loop(app: Rc<App>) {
    loop {
        let l = app.push.wake.listen();
        loop {
            let agent = app.push.inbox.borrow_mut().pop_front();
            let Some(agent) = agent else { break };
            app.spawn(online_event(app.clone(), agent));
        }
        while app.push.active.get() < app.push.cfg.concurrency {
            let Some(job) = app.push.queue.borrow_mut().pop_front() else {
                break;
            };
            app.push.active.set(app.push.active.get() + 1);
            app.spawn(attempt(app.clone(), job));
        }
        if app.shutdown.is_set() {
            return;
        }
        l.await;
    }
}

/// One attempt of one job, then its verdict.
async fn attempt(app: Rc<App>, mut job: Job) {
    job.attempt += 1;
    let result = match app.push.vapid() {
        Some(v) => send_once(&app, &v, &job).await,
        None => Err(client::SendError::NoTls),
    };
    let push = &app.push;
    push.active.set(push.active.get() - 1);
    push.wake.notify(usize::MAX);
    let elapsed = job.created.elapsed().as_secs();
    let verdict = sched::judge(&result, job.attempt, elapsed, push.cfg.ttl);
    app.metrics.push_messages.inc((job.event, verdict.label()));
    match verdict {
        sched::Verdict::Retry(secs) => {
            crate::log_debug!("push to {}: retry in {secs} s ({result:?})", job.sub.id);
            Timer::after(Duration::from_secs(secs)).await;
            push.queue.borrow_mut().push_back(job);
            push.wake.notify(usize::MAX);
            return;
        }
        sched::Verdict::Gone => {
            if push.remove_id(&app.store, &job.sub.id).await.is_ok() {
                app.metrics.push_subscriptions.inc("removed_gone");
            }
        }
        sched::Verdict::Drop(why) => {
            crate::log_info!("push to {} dropped ({why}): {result:?}", job.sub.id)
        }
        sched::Verdict::Delivered => {}
    }
    push.pending.set(push.pending.get() - 1);
}

async fn send_once(app: &App, v: &Vapid, job: &Job) -> Result<client::Answer, client::SendError> {
    let ep = subs::Endpoint::parse(&job.sub.endpoint, app.push.cfg.allow_loopback)
        .map_err(|_| client::SendError::Forbidden(std::net::Ipv4Addr::UNSPECIFIED.into()))?;
    let body = encrypt(&job.payload, &job.sub)
        .map_err(|e| client::SendError::Io(format!("encrypt: {e}")))?;
    let auth = v.authorization(&ep.origin, app.clock.unix());
    let elapsed = job.created.elapsed().as_secs();
    let req = client::PushRequest {
        ttl: app.push.cfg.ttl.saturating_sub(elapsed),
        urgency: job.urgency,
        topic: job.topic.as_deref(),
        authorization: &auth,
        body: &body,
    };
    client::send(
        &ep,
        &req,
        Duration::from_secs(app.push.cfg.timeout),
        app.push.cfg.allow_loopback,
        app.push.tls.as_ref(),
    )
    .await
}

/// Encrypts with a fresh ephemeral key and salt.
fn encrypt(payload: &[u8], sub: &Sub) -> Result<Vec<u8>, ece::EceError> {
    let mut salt = [0u8; 16];
    let mut d = [0u8; 32];
    loop {
        // Without OS randomness nothing is safe to send: stop.
        getrandom::fill(&mut salt).expect("the OS random number generator failed");
        getrandom::fill(&mut d).expect("the OS random number generator failed");
        // Out-of-range scalars (probability ~2^-32) are drawn again.
        if let Ok(k) = p256::SecretKey::from_slice(&d) {
            return ece::encrypt(payload, &sub.p256dh, &sub.auth, &k, &salt);
        }
    }
}

/// The notification JSON: what the service worker shows, and where a tap goes.
fn payload(kind: &str, agent: &str, title: &str, body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let url = format!("/call/{agent}");
    let _ = (|| -> Result<(), botcall_core::json::write::Full> {
        Writer::new(&mut out)
            .begin_obj()?
            .field_str("type", kind)?
            .field_str("agent_id", agent)?
            .field_str("title", title)?
            .field_str("body", body)?
            .field_str("url", &url)?
            .end_obj()?;
        Ok(())
    })();
    out
}

/// A topic (RFC 8030 §5.4: ≤ 32 base64url characters) so that a newer
/// `online` message replaces an undelivered older one.
fn topic(agent: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(agent.as_bytes());
    vapid::b64url(&h[..24])
}

/// A bot came online here (after its `hello`): its `online` subscribers
/// are notified unless it was within `push_online_debounce`.
pub(crate) fn bot_online(app: &App, agent: &AgentId) {
    if app.push.vapid().is_none() {
        return;
    }
    let mut inbox = app.push.inbox.borrow_mut();
    if inbox.len() >= super::INBOX_MAX {
        app.metrics.push_events.inc(("online", "queue_full"));
        return;
    }
    inbox.push_back(agent.clone());
    app.push.wake.notify(usize::MAX);
}

async fn online_event(app: Rc<App>, agent: AgentId) {
    {
        let now = app.clock.unix();
        if !app.push.take_debounce(&app.store, &agent, now).await {
            app.metrics.push_events.inc(("online", "debounced"));
            return;
        }
        let subs = match app
            .push
            .for_agent(&app.store, &agent, Events::ONLINE, now)
            .await
        {
            Ok(s) => s,
            Err(_) => {
                app.metrics.push_events.inc(("online", "store_error"));
                return;
            }
        };
        if subs.is_empty() {
            return;
        }
        app.metrics.push_events.inc(("online", "sent"));
        let name = match app.store.lookup(&agent, now).await {
            Ok(Some(v)) => v.rec.name.map(String::from),
            _ => None,
        }
        .unwrap_or_else(|| agent.to_string());
        let title = format!("{name} is online");
        let payload = payload("online", &agent, &title, "Tap to call");
        for sub in subs {
            app.push.enqueue(
                &app.metrics,
                Job {
                    sub,
                    event: "online",
                    payload: payload.clone(),
                    topic: Some(topic(&agent)),
                    urgency: "normal",
                    created: Instant::now(),
                    attempt: 0,
                },
            );
        }
    }
}

/// Why a bot's `callback` was refused: the `error` code and message.
pub(crate) type Refusal = (&'static str, String);

/// A bot asks subscriber `to` to call back, saying `text`.
pub(crate) async fn callback(
    app: &App,
    bot: &AgentId,
    to: &str,
    text: &str,
) -> Result<(), Refusal> {
    if app.push.vapid().is_none() {
        return Err((
            "push_disabled",
            "Web Push is not configured on this daemon".into(),
        ));
    }
    let now = app.clock.unix();
    let sub = match app.push.get(&app.store, to, now).await {
        Ok(s) => s,
        Err(_) => {
            return Err(("server_busy", "the store is unavailable, try again".into()));
        }
    };
    // One answer for "no such id" and "not yours": ids do not leak.
    let Some(sub) = sub.filter(|s| s.agent == *bot && s.events.has(Events::CALLBACK)) else {
        app.metrics.push_events.inc(("callback", "not_subscribed"));
        return Err((
            "not_subscribed",
            "no subscription with this id granted callback to this bot".into(),
        ));
    };
    let ms = app.clock.mono_ms();
    if let Err(retry) = app.push.per_bot.borrow_mut().check(bot, ms) {
        app.metrics.push_events.inc(("callback", "rate_limited"));
        return Err((
            "rate_limited",
            format!("too many callbacks; try again in {retry} s"),
        ));
    }
    if let Err(retry) = app.push.per_sub.borrow_mut().check(&sub.id, ms) {
        app.metrics.push_events.inc(("callback", "rate_limited"));
        return Err((
            "rate_limited",
            format!("too many callbacks to this person; try again in {retry} s"),
        ));
    }
    let name = match app.store.lookup(bot, now).await {
        Ok(Some(v)) => v.rec.name.map(String::from),
        _ => None,
    }
    .unwrap_or_else(|| bot.to_string());
    let payload = payload(
        "callback",
        bot,
        &format!("{name} asks you to call back"),
        text,
    );
    let job = Job {
        sub,
        event: "callback",
        payload,
        topic: None,
        urgency: "high",
        created: Instant::now(),
        attempt: 0,
    };
    if !app.push.enqueue(&app.metrics, job) {
        return Err((
            "server_busy",
            "the push queue is full, try again later".into(),
        ));
    }
    app.metrics.push_events.inc(("callback", "sent"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_fits_and_topic_is_short() {
        let long = "x".repeat(botcall_core::protocol::MAX_CALLBACK_TEXT * 6);
        let p = payload("callback", &"a".repeat(64), &"n".repeat(200), &long);
        assert!(p.len() <= ece::MAX_PLAINTEXT, "{}", p.len());
        let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
        assert_eq!(v["url"], format!("/call/{}", "a".repeat(64)));
        let t = topic("echo_bot");
        assert_eq!(t.len(), 32);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }
}
