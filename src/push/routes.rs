//! `GET /v1/push/key`, `POST` and `DELETE /v1/push/subscriptions`.

use botcall_core::json::Writer;

use super::subs::{Sub, SubError, SubRequest};
use crate::app::App;
use crate::client::ClientKey;
use crate::http::Response;
use crate::http::request::Request;
use crate::store::AgentStore;

fn refuse(app: &App, e: &SubError) -> Response {
    app.metrics.push_subscriptions.inc(e.code());
    Response::error(e.status(), e.code(), &e.message())
}

fn disabled() -> Response {
    Response::error(
        503,
        "push_disabled",
        "Web Push is not configured on this daemon (push_subject)",
    )
}

fn is_json(req: &Request<'_>) -> bool {
    req.header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// `GET /v1/push/key`: the VAPID public key (the PWA's `applicationServerKey`).
pub(crate) fn key(app: &App) -> Response {
    let Some(v) = app.push.vapid() else {
        return disabled();
    };
    let mut body = Vec::with_capacity(128);
    let _ = (|| -> Result<(), botcall_core::json::write::Full> {
        Writer::new(&mut body)
            .begin_obj()?
            .field_str("public_key", v.public())?
            .end_obj()?;
        Ok(())
    })();
    Response::json(200, body).with_header("cache-control", "no-cache")
}

/// `POST` / `DELETE /v1/push/subscriptions`.
/// `client` is the requester's key for the per-IP cap.
pub(crate) async fn subscriptions(app: &App, req: &Request<'_>, client: ClientKey) -> Response {
    let post = match req.method {
        "POST" => true,
        "DELETE" => false,
        _ => {
            return Response::error(
                405,
                "method_not_allowed",
                "method not allowed on this route",
            )
            .with_header("allow", "POST, DELETE");
        }
    };
    if app.push.vapid().is_none() {
        return disabled();
    }
    if !is_json(req) {
        return Response::error(
            415,
            "unsupported_media_type",
            "Content-Type must be application/json",
        );
    }
    let parsed = match SubRequest::parse(req.body, post, app.push.cfg.allow_loopback) {
        Ok(p) => p,
        Err(e) => return refuse(app, &e),
    };
    let now = app.clock.unix();
    if !post {
        return match app
            .push
            .remove_endpoint(&app.store, &parsed.agent, &parsed.endpoint)
            .await
        {
            Ok(true) => {
                app.metrics.push_subscriptions.inc("removed");
                let mut body = Vec::with_capacity(64);
                let _ = (|| -> Result<(), botcall_core::json::write::Full> {
                    Writer::new(&mut body)
                        .begin_obj()?
                        .key("deleted")?
                        .bool(true)?
                        .end_obj()?;
                    Ok(())
                })();
                Response::json(200, body)
            }
            Ok(false) => Response::error(404, "not_found", "no such subscription"),
            Err(e) => refuse(app, &e),
        };
    }
    match app.store.lookup(&parsed.agent, now).await {
        Ok(Some(_)) => {}
        Ok(None) => return refuse(app, &SubError::UnknownAgent),
        Err(_) => return refuse(app, &SubError::Unavailable),
    }
    let Some((p256dh, auth)) = parsed.keys else {
        return refuse(
            app,
            &SubError::BadField("subscription.keys is missing".into()),
        );
    };
    let mut raw = [0u8; 16];
    // Without OS randomness ids would be guessable: better to stop.
    getrandom::fill(&mut raw).expect("the OS random number generator failed");
    let client = client.to_string();
    let expires_in = app.push.cfg.subscription_days * 86_400;
    let sub = Sub {
        id: super::vapid::b64url(&raw),
        agent: parsed.agent.clone(),
        endpoint: parsed.endpoint,
        p256dh,
        auth,
        events: parsed.events,
        client,
        expires: now + expires_in,
    };
    match app.push.upsert(&app.store, sub, now).await {
        Ok((id, fresh)) => {
            app.metrics
                .push_subscriptions
                .inc(if fresh { "added" } else { "renewed" });
            let mut body = Vec::with_capacity(160);
            let _ = (|| -> Result<(), botcall_core::json::write::Full> {
                let mut w = Writer::new(&mut body);
                w.begin_obj()?
                    .field_str("id", &id)?
                    .field_str("agent_id", &parsed.agent)?
                    .key("events")?
                    .begin_arr()?;
                if parsed.events.has(super::subs::Events::ONLINE) {
                    w.str("online")?;
                }
                if parsed.events.has(super::subs::Events::CALLBACK) {
                    w.str("callback")?;
                }
                w.end_arr()?
                    .field_u64("expires_in", expires_in)?
                    .end_obj()?;
                Ok(())
            })();
            Response::json(if fresh { 201 } else { 200 }, body)
        }
        Err(e) => refuse(app, &e),
    }
}
