//! systemd integration (`Type=notify`): READY after the listeners are
//! bound, WATCHDOG from the event loop's tick, STOPPING on shutdown. All
//! no-ops when not started by systemd (`NOTIFY_SOCKET` unset).

use sd_notify::NotifyState;

fn send(state: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let _ = sd_notify::notify(state);
    }
}

pub(crate) fn notify_ready() {
    send(&[NotifyState::Ready]);
}

pub(crate) fn notify_watchdog() {
    send(&[NotifyState::Watchdog]);
}

pub(crate) fn notify_stopping() {
    send(&[NotifyState::Stopping]);
}
