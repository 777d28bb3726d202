//! botcalld: the BotCall discovery daemon.

#[allow(dead_code)]
mod stun;

fn main() {
    println!("botcalld {}", env!("CARGO_PKG_VERSION"));
}
