//! Idle time and metered networks over a real D-Bus: a private `dbus-daemon` plays the desktop,
//! with a screensaver and a NetworkManager whose answers the test changes; the node is the real
//! library, and its status must follow.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gleaner_app::model::NodeState;
use gleaner_app::node::NodeApi;
use gleaner_app::node::collector::CollectorNode;
use gleaner_app::system::{IDLE_AFTER, Observed, Probe, apply};

/// A private message bus; killed on drop.
struct Bus {
    child: Child,
    address: String,
}

impl Bus {
    fn start() -> Bus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (Debian package `dbus`, installed by `make setup`)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        Bus {
            child,
            address: line.trim().to_string(),
        }
    }

    async fn connect(&self) -> zbus::Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap()
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct ScreenSaver(Arc<AtomicU32>);

#[zbus::interface(name = "org.freedesktop.ScreenSaver")]
impl ScreenSaver {
    fn get_session_idle_time(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

struct NetworkManager(Arc<AtomicU32>);

#[zbus::interface(name = "org.freedesktop.NetworkManager")]
impl NetworkManager {
    #[zbus(property)]
    fn metered(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Serves a screensaver (idle seconds) and a NetworkManager (`NMMetered`) on `bus`.
async fn desktop(
    bus: &Bus,
    idle_s: u32,
    metered: u32,
) -> (Arc<AtomicU32>, Arc<AtomicU32>, zbus::Connection) {
    let idle = Arc::new(AtomicU32::new(idle_s));
    let nm = Arc::new(AtomicU32::new(metered));
    let conn = zbus::connection::Builder::address(bus.address.as_str())
        .unwrap()
        .name("org.freedesktop.ScreenSaver")
        .unwrap()
        .name("org.freedesktop.NetworkManager")
        .unwrap()
        .serve_at("/org/freedesktop/ScreenSaver", ScreenSaver(idle.clone()))
        .unwrap()
        .serve_at(
            "/org/freedesktop/NetworkManager",
            NetworkManager(nm.clone()),
        )
        .unwrap()
        .build()
        .await
        .unwrap();
    (idle, nm, conn)
}

fn node(dir: &std::path::Path) -> CollectorNode {
    CollectorNode::open(&dir.join("config.toml"), &dir.join("node")).unwrap()
}

#[tokio::test]
async fn an_empty_desktop_means_not_idle_and_not_metered() {
    let bus = Bus::start();
    let client = bus.connect().await;
    let probe = Probe {
        session: Some(client.clone()),
        system: Some(client),
    };
    let seen = probe.observe().await;
    assert_eq!(seen, Observed::default(), "nobody answers: nothing known");
    assert!(!seen.idle(), "unknown idle time is not idle");
    assert!(!seen.metered(), "unknown network is not metered");
    // No buses at all: the same cautious answers.
    let none = Probe::default().observe().await;
    assert_eq!(none, Observed::default());
}

#[tokio::test]
async fn the_node_follows_the_desktop() {
    let bus = Bus::start();
    let (idle, metered, _desktop) = desktop(&bus, 10, 1).await;
    let client = bus.connect().await;
    let probe = Probe {
        session: Some(client.clone()),
        system: Some(client),
    };
    let dir = tempfile::tempdir().unwrap();
    let node = node(dir.path());
    assert!(
        node.settings().unwrap().pause_on_metered,
        "pausing on metered networks is the default"
    );

    // Metered (NMMetered 1 = yes).
    let seen = probe.observe().await;
    assert_eq!(seen.idle_for, Some(Duration::from_secs(10)));
    assert_eq!(seen.metered, Some(true));
    apply(&node, &seen);
    let status = node.status();
    assert_eq!(status.state, NodeState::Capped, "{status:?}");
    assert!(
        status.detail.as_deref().unwrap_or("").contains("metered"),
        "{status:?}"
    );

    // 3 = guessed metered counts too; 4 = guessed not metered releases it.
    metered.store(3, Ordering::SeqCst);
    assert_eq!(probe.observe().await.metered, Some(true));
    metered.store(4, Ordering::SeqCst);
    let seen = probe.observe().await;
    assert_eq!(seen.metered, Some(false));
    apply(&node, &seen);
    assert!(
        !node.status().detail.unwrap_or_default().contains("metered"),
        "{:?}",
        node.status()
    );

    // "Only when idle": 10 s without input is not idle; past IDLE_AFTER it is.
    let mut settings = node.settings().unwrap();
    settings.idle_only = true;
    node.update_settings(settings).unwrap();
    apply(&node, &probe.observe().await);
    let status = node.status();
    assert!(
        status.detail.as_deref().unwrap_or("").contains("idle"),
        "waits for idle: {status:?}"
    );
    idle.store(IDLE_AFTER.as_secs() as u32 + 1, Ordering::SeqCst);
    let seen = probe.observe().await;
    assert!(seen.idle());
    apply(&node, &seen);
    let status = node.status();
    assert!(
        !status.detail.as_deref().unwrap_or("").contains("idle"),
        "shares once idle: {status:?}"
    );
    // Back at the keyboard: waiting again.
    idle.store(0, Ordering::SeqCst);
    apply(&node, &probe.observe().await);
    assert!(node.status().detail.unwrap_or_default().contains("idle"));
}
