//! Deciding per call with the SDK (`Bot::next_incoming`, `answer`,
//! `reject`), as the C ABI and Go do: a rejected call reaches the Rust test
//! caller as `reject` with the bot's reason, a dropped ringing call as
//! `busy`, and an answered one carries audio both ways.
mod common;
mod sdk_caller;

use std::time::Duration;

use botcall_sdk::BotConfig;
use common::*;
use sdk_caller::{Caller, Heard, assert_tones_both_ways, bot_talk, spawn_sdk_bot};

#[test]
fn reject_drop_and_answer_a_ringing_call() {
    let d = Daemon::start(&[]);
    let heard = Heard::default();
    let h = heard.clone();
    let cfg = BotConfig::new(d.url(""), Keys::new().ec).agent_id("ec-bot");
    let bot = spawn_sdk_bot(cfg, move |bot| async move {
        let first = bot.next_incoming().await.expect("a verified call");
        assert_eq!(first.caller().call_id.as_str(), first.id());
        bot.reject(first, "declined").await.expect("reject");
        // Too long a reason is refused (and the call rejected as busy).
        let second = bot.next_incoming().await.unwrap();
        assert!(bot.reject(second, &"x".repeat(65)).await.is_err());
        drop(bot.next_incoming().await.unwrap());
        let call = bot
            .answer(bot.next_incoming().await.unwrap())
            .await
            .expect("answer");
        let audio = bot_talk(&call, None, &h).await;
        drop(call);
        bot.shutdown().await;
        audio
    });

    for want in ["declined", "busy", "busy"] {
        let mut c = Caller::new(&d);
        let id = c.call("ec-bot");
        let m = c.wait_for("reject", Duration::from_secs(60));
        assert_eq!(
            (m["call_id"].as_str(), m["reason"].as_str()),
            (Some(id.as_str()), Some(want)),
            "{m}"
        );
    }
    let mut c = Caller::new(&d);
    c.call("ec-bot");
    c.run_until_heard(100, &heard);
    c.hang_up("bye");
    let audio = bot.join().expect("bot thread");
    assert_tones_both_ways(&audio, &c, 80);
}
