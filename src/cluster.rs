//! Scale-out over Redis: the tasks that keep this daemon part of the
//! network — liveness and TTL refresh, reconnect with backoff (and
//! re-announcing every bot connected here when Redis comes back), the
//! subscriber for this daemon's channel, and the ordered publisher.

#![cfg(feature = "redis")]

use std::rc::Rc;
use std::time::{Duration, Instant};

use async_io::Timer;
use botcall_core::protocol::{self, Codecs};
use futures_lite::FutureExt;

use crate::app::App;
use crate::auth::attest::MAX_JWKS_KEYS;
use crate::signal::remote;
use crate::store::client::PubSub;
use crate::store::redis::{LIVENESS_EVERY, RedisStore, channel};
use crate::store::{AgentStore, Record};
use crate::{log_info, log_warn};

fn redis(app: &App) -> Option<&RedisStore> {
    app.store.redis()
}

/// Starts the cluster tasks (no-op for the memory store).
pub(crate) fn start(app: &Rc<App>) {
    if redis(app).is_none() {
        return;
    }
    app.metrics.redis_up.set(1);
    app.spawn(liveness_loop(app.clone()));
    app.spawn(subscriber_loop(app.clone()));
    app.spawn(publisher_loop(app.clone()));
}

async fn liveness_loop(app: Rc<App>) {
    let mut backoff = Duration::from_millis(250);
    let mut down_logged = false;
    let mut jwks_keys = 1;
    loop {
        let Some(store) = redis(&app) else { return };
        if store.is_up() {
            let online: Vec<_> = app
                .hub
                .borrow()
                .online_agents()
                .into_iter()
                .map(|(a, _, _)| a)
                .collect();
            if store.heartbeat(&online).await.is_err() {
                store.mark_down();
                continue;
            }
            match store
                .share_jwk(app.attest.public_jwk(), app.clock.unix(), MAX_JWKS_KEYS)
                .await
            {
                Ok(peers) => {
                    let n = app.attest.set_peers(&peers);
                    if n != jwks_keys {
                        log_info!(
                            "attestation keys in the JWKS (this daemon's and its peers'): {n}"
                        );
                        jwks_keys = n;
                    }
                }
                Err(_) => {
                    store.mark_down();
                    continue;
                }
            }
            backoff = Duration::from_millis(250);
            stop_or_sleep(&app, LIVENESS_EVERY).await;
        } else {
            // Down: found by the heartbeat above or by any request's failure.
            if !down_logged {
                log_warn!(
                    "redis {} unreachable: lookups and registrations answer 503 until it is back",
                    store.url
                );
                app.metrics.redis_up.set(0);
                down_logged = true;
            }
            match store.reconnect().await {
                Ok(()) => {
                    let n = reannounce(&app, store).await;
                    app.metrics.redis_up.set(1);
                    down_logged = false;
                    log_info!(
                        "redis {} is back; re-announced {n} connected bots",
                        store.url
                    );
                }
                Err(_) => {
                    // Exponential backoff with jitter, capped: no busy loop.
                    let mut j = [0u8; 1];
                    let _ = getrandom::fill(&mut j);
                    let wait = backoff + backoff * u32::from(j[0]) / 512;
                    stop_or_sleep(&app, wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        if app.shutdown.is_set() {
            return;
        }
    }
}

async fn stop_or_sleep(app: &App, d: Duration) {
    let sleep = async {
        Timer::after(d).await;
    };
    sleep.or(app.shutdown.wait()).await;
}

/// Writes every bot connected here back into the store.
async fn reannounce(app: &App, store: &RedisStore) -> usize {
    let agents = app.hub.borrow().online_agents();
    let unix = app.clock.unix();
    let mut n = 0;
    for (agent, max_calls, owner) in agents {
        let rec = Record {
            agent_id: agent,
            endpoint: None,
            name: None,
            audio: Codecs::OPUS,
            ttl: protocol::DEFAULT_TTL as u32,
            max_calls,
            listed: false,
            owner,
            // Only the memory table tells open ids apart (its reserved share).
            open: false,
        };
        if store.attach(rec, unix).await.is_ok() {
            n += 1;
        }
    }
    let _ = store.heartbeat(&[]).await;
    n
}

async fn subscriber_loop(app: Rc<App>) {
    let me = app.hub.borrow().me().clone();
    let ch = channel(&me);
    let mut backoff = Duration::from_millis(250);
    loop {
        if app.shutdown.is_set() {
            return;
        }
        let Some(store) = redis(&app) else { return };
        let mut ps = match PubSub::subscribe(store.target(), &ch).await {
            Ok(ps) => ps,
            Err(_) => {
                stop_or_sleep(&app, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(250);
        loop {
            let next = async { ps.message().await.ok() };
            let stop = async {
                app.shutdown.wait().await;
                None
            };
            let Some(payload) = next.or(stop).await else {
                break;
            };
            let Ok(text) = std::str::from_utf8(&payload) else {
                app.metrics.remote_messages.inc("invalid");
                continue;
            };
            match remote::decode(text) {
                Some(env) => {
                    app.hub
                        .borrow_mut()
                        .handle_remote(env, Instant::now(), app.clock.unix());
                    app.deliver();
                }
                None => app.metrics.remote_messages.inc("invalid"),
            }
        }
        // The subscription ended: Redis went away (or we are stopping).
        if let Some(store) = redis(&app) {
            store.mark_down();
        }
    }
}

async fn publisher_loop(app: Rc<App>) {
    loop {
        let next = app.bus.queue.borrow_mut().pop_front();
        let Some((to, env)) = next else {
            let l = app.bus.ready.listen();
            if app.bus.queue.borrow().is_empty() {
                let wait = async {
                    l.await;
                };
                wait.or(app.shutdown.wait()).await;
                if app.shutdown.is_set() && app.bus.queue.borrow().is_empty() {
                    return;
                }
            }
            continue;
        };
        let Some(store) = redis(&app) else { return };
        if store.publish(&to, &env).await.is_err() {
            app.metrics.remote_messages.inc("lost");
        }
    }
}
