//! What the desktop knows and the node needs: is the user away, is the network metered?
//!
//! The node's governor has two switches the app must feed: "share only while this computer is
//! idle" and "pause on metered networks" (see `gleaner_collector::governor`). On Linux both facts
//! come over D-Bus:
//!
//! * **Idle time**, from the session bus: GNOME's `org.gnome.Mutter.IdleMonitor.GetIdletime`
//!   (milliseconds), else the freedesktop `org.freedesktop.ScreenSaver.GetSessionIdleTime`
//!   (KDE, Xfce, most others; seconds).
//! * **Metered**, from the system bus: NetworkManager's `Metered` property (`NMMetered`: 1 = yes,
//!   3 = guessed yes; 2, 4 = no; 0 = unknown).
//!
//! When a fact cannot be read the node is told the cautious answer: *not idle* (the user asked to
//! share only while away, and we cannot tell that they are) and *not metered* (no network manager
//! to ask is the normal case on wired desktops and servers). Each is logged once.

use std::sync::Arc;
use std::time::Duration;

use zbus::Connection;
use zbus::names::InterfaceName;

use crate::node::NodeApi;

/// How long without input before the computer counts as idle.
pub const IDLE_AFTER: Duration = Duration::from_secs(5 * 60);
/// How often the app asks. Idle time changes by the second, but the node only needs to know
/// within a minute or so; a D-Bus round trip every 15 s costs nothing.
pub const POLL_EVERY: Duration = Duration::from_secs(15);

const MUTTER_IDLE: (&str, &str, &str) = (
    "org.gnome.Mutter.IdleMonitor",
    "/org/gnome/Mutter/IdleMonitor/Core",
    "org.gnome.Mutter.IdleMonitor",
);
const SCREENSAVER: (&str, &str, &str) = (
    "org.freedesktop.ScreenSaver",
    "/org/freedesktop/ScreenSaver",
    "org.freedesktop.ScreenSaver",
);
const NETWORK_MANAGER: (&str, &str, &str) = (
    "org.freedesktop.NetworkManager",
    "/org/freedesktop/NetworkManager",
    "org.freedesktop.NetworkManager",
);

/// What one look at the desktop found; `None` where it could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    pub idle_for: Option<Duration>,
    pub metered: Option<bool>,
}

impl Observed {
    /// What the node is told: idle only when known to be idle, metered only when known metered.
    pub fn idle(&self) -> bool {
        self.idle_for.is_some_and(|d| d >= IDLE_AFTER)
    }

    pub fn metered(&self) -> bool {
        self.metered.unwrap_or(false)
    }
}

/// The two buses to ask; either may be missing (no session bus on a server, no system bus in a
/// sandbox).
#[derive(Clone, Default)]
pub struct Probe {
    pub session: Option<Connection>,
    pub system: Option<Connection>,
}

impl Probe {
    /// Connects to the user's session bus and the system bus, whichever exist.
    pub async fn connect() -> Probe {
        let session = match Connection::session().await {
            Ok(c) => Some(c),
            Err(err) => {
                tracing::info!(%err, "no session bus: idle time unknown");
                None
            }
        };
        let system = match Connection::system().await {
            Ok(c) => Some(c),
            Err(err) => {
                tracing::info!(%err, "no system bus: metered state unknown");
                None
            }
        };
        Probe { session, system }
    }

    /// Reads both facts now.
    pub async fn observe(&self) -> Observed {
        Observed {
            idle_for: match &self.session {
                Some(c) => idle_for(c).await,
                None => None,
            },
            metered: match &self.system {
                Some(c) => metered(c).await,
                None => None,
            },
        }
    }
}

/// How long the session has had no input, from whichever idle monitor answers.
pub async fn idle_for(conn: &Connection) -> Option<Duration> {
    let (dest, path, iface) = MUTTER_IDLE;
    if let Ok(reply) = conn
        .call_method(Some(dest), path, Some(iface), "GetIdletime", &())
        .await
        && let Ok(ms) = reply.body().deserialize::<u64>()
    {
        return Some(Duration::from_millis(ms));
    }
    let (dest, path, iface) = SCREENSAVER;
    match conn
        .call_method(Some(dest), path, Some(iface), "GetSessionIdleTime", &())
        .await
    {
        Ok(reply) => reply
            .body()
            .deserialize::<u32>()
            .ok()
            .map(|s| Duration::from_secs(u64::from(s))),
        Err(err) => {
            tracing::debug!(%err, "no idle monitor answered");
            None
        }
    }
}

/// Whether NetworkManager says the primary connection is metered (`None`: it did not say).
pub async fn metered(conn: &Connection) -> Option<bool> {
    let (dest, path, iface) = NETWORK_MANAGER;
    let props = zbus::fdo::PropertiesProxy::builder(conn)
        .destination(dest)
        .ok()?
        .path(path)
        .ok()?
        .build()
        .await
        .ok()?;
    let iface = InterfaceName::try_from(iface).ok()?;
    let value = match props.get(iface, "Metered").await {
        Ok(v) => v,
        Err(err) => {
            tracing::debug!(%err, "NetworkManager did not answer");
            return None;
        }
    };
    match u32::try_from(value).ok()? {
        1 | 3 => Some(true),
        2 | 4 => Some(false),
        _ => None,
    }
}

/// Tells `node` what `seen` means for it.
pub fn apply(node: &dyn NodeApi, seen: &Observed) {
    node.set_idle(seen.idle());
    node.set_metered(seen.metered());
}

/// Watches the desktop for as long as the app runs, telling the node whenever it looks.
pub fn spawn(node: Arc<dyn NodeApi>) {
    tauri::async_runtime::spawn(async move {
        let probe = Probe::connect().await;
        let mut warned_idle = false;
        let mut last = None;
        loop {
            let seen = probe.observe().await;
            if seen.idle_for.is_none() && !warned_idle && probe.session.is_some() {
                tracing::warn!(
                    "no idle monitor answers on the session bus: with \"only when idle\" on, \
                     the node cannot tell that you are away and will not share"
                );
                warned_idle = true;
            }
            if last != Some((seen.idle(), seen.metered())) {
                tracing::info!(
                    idle = seen.idle(),
                    metered = seen.metered(),
                    "desktop state"
                );
                last = Some((seen.idle(), seen.metered()));
            }
            apply(node.as_ref(), &seen);
            tokio::time::sleep(POLL_EVERY).await;
        }
    });
}
