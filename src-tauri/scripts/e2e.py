"""The real app on a virtual display: WebDriver drives the window, D-Bus drives the tray.

Run by test-xvfb.sh inside `xvfb-run … dbus-run-session`. Usage: e2e.py BINARY
Prints 'N passed, N failed' at the end; exits non-zero on any failure.
Screenshots of the main states go to target/screenshots/app-*.png.
"""

import json
import os
import tomllib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

from desktop import SHOTS, Tray, WebDriver, descendants, names, wait_for

BINARY = os.path.abspath(sys.argv[1])


def free_port():
    """A port nothing listens on now (the kernel's pick), so a driver left over from another run
    on the usual 4444/4445 cannot answer for this one."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_env():
    d = tempfile.mkdtemp(prefix="gleaner-app-e2e-")
    env = dict(os.environ, GLEANER_APP_DIR=d, RUST_LOG="info")
    return d, env


def report(results, name, error=None):
    """Records one check's outcome and prints it as a TAP-style line (with the traceback)."""
    results.append((name, error))
    if error is None:
        print(f"ok - {name}", flush=True)
    else:
        print(f"not ok - {name}: {error}", flush=True)
        traceback.print_exception(error)


def test_window_and_tray(results):
    """Onboarding, Share/Pause from the window and from the tray, settings saved to disk."""
    app_dir, env = fresh_env()
    driver_bin = shutil.which("tauri-driver") or os.path.expanduser("~/.cargo/bin/tauri-driver")
    driver_port, native_port = free_port(), free_port()
    while native_port == driver_port:
        native_port = free_port()
    driver = subprocess.Popen([driver_bin, "--port", str(driver_port), "--native-port", str(native_port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wd = WebDriver(driver_port)
    try:
        wait_for("tauri-driver", wd.ready, timeout=30)
        os.environ.update(GLEANER_APP_DIR=app_dir)
        def end_dropped_launch():
            no_app_left(timeout=5)
            wait_for("tauri-driver", wd.ready, timeout=30)

        wd.start(BINARY, on_dropped=end_dropped_launch)

        def check(name, fn):
            try:
                fn()
                report(results, name)
            except Exception as e:  # noqa: BLE001
                report(results, name, e)
                try:
                    wd.screenshot(f"app-FAILED-{name.replace(' ', '-')}.png")
                except Exception:  # noqa: BLE001
                    pass

        def onboarding():
            wait_for("onboarding dialog", lambda: wd.attr("#onboarding", "open") is not None, timeout=40)
            text = wd.text("#onboarding")
            for words in ["GET requests", "No cookies", "private address", "robots.txt", "No server can override"]:
                assert words in text, f"onboarding lacks {words!r}"
            wd.screenshot("app-onboarding.png")
            wd.click("#onboarding-start")
            wait_for("onboarding closed", lambda: wd.js("return !document.getElementById('onboarding')"))
            wait_for("app.json written", lambda: json.load(open(os.path.join(app_dir, "app.json")))["onboarded"])

        # No validator is configured, so the node cannot run: the state is "offline", and the
        # Share/Pause control still works (pausing is the user's choice, whatever the network).
        def share_pause_from_window():
            wd.wait_attr("#state", "data-node-state", "offline")
            assert "add a validator" in wd.text("#control")
            wait_for("panels ready", lambda: wd.attr("#bandwidth", "data-state") == "ready")
            wd.screenshot("app-offline.png")
            wd.click("#pause")
            wd.wait_attr("#state", "data-node-state", "paused")
            wd.screenshot("app-paused.png")
            wd.click("#resume")
            wd.wait_attr("#state", "data-node-state", "offline")

        pid = wait_for("app process", lambda: app_pid(BINARY))

        def tray_toggles():
            tray = Tray(pid)
            items = tray.items()
            for label in ["Pause sharing", "Pause for 1 hour", "Open dashboard", "Quit"]:
                assert label in items, f"tray lacks {label!r}: {sorted(items)}"
            assert any(label.startswith("Today: ") for label in items), sorted(items)
            tray.click("Pause sharing")
            wd.wait_attr("#state", "data-node-state", "paused")
            wait_for("tray says Resume", lambda: "Resume sharing" in tray.items())
            tray.click("Resume sharing")
            wd.wait_attr("#state", "data-node-state", "offline")
            wait_for("tray says Pause", lambda: "Pause sharing" in tray.items())
            tray.click("Pause for 1 hour")
            wd.wait_attr("#state", "data-node-state", "paused")
            assert "Resumes by itself" in wd.text("#control")
            tray.click("Resume sharing")
            wd.wait_attr("#state", "data-node-state", "offline")

        def settings_saved():
            wd.click("#nav-activity")
            wait_for("activity panel", lambda: wd.attr("#activity", "data-state") in ("ready", "empty"))
            wd.screenshot("app-activity.png")
            wd.click("#nav-settings")
            wait_for("settings panel", lambda: wd.attr("#settings", "data-state") == "ready")
            wd.js("document.getElementById('s-validators').value = 'https://validator.example';"
                  "document.getElementById('s-blocklist').value = 'Example.COM';", idempotent=True)
            wd.click("#settings-save")
            wait_for("saved", lambda: wd.text("#settings-msg") == "Saved.")
            with open(os.path.join(app_dir, "config.toml"), "rb") as f:
                stored = tomllib.load(f)
            assert stored["blocklist"] == ["example.com"], stored
            assert stored["validators"] == ["https://validator.example"], stored
            wd.screenshot("app-settings.png")
            wd.js("document.getElementById('s-validators').value = 'ftp://nope';", idempotent=True)
            wd.click("#settings-save")
            wait_for("refusal shown", lambda: "Not saved" in (wd.text("#settings-msg") or ""))

        check("first-run onboarding", onboarding)
        check("share and pause from the window", share_pause_from_window)
        check("the tray menu toggles sharing", tray_toggles)
        check("settings are saved by the node", settings_saved)
    finally:
        try:
            wd.quit()
        except Exception:  # noqa: BLE001
            pass
        driver.send_signal(signal.SIGTERM)
        try:
            driver.wait(10)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait()
        shutil.rmtree(app_dir, ignore_errors=True)


def app_pid(binary):
    """The newest process running `binary`."""
    best = None
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/exe") == binary:
                    best = max(best or 0, int(entry))
            except OSError:
                pass
    return best


def no_app_left(timeout=30):
    """Waits for every earlier instance to exit (then kills stragglers): an instance still
    holding the single-instance name would make the next launch hand over and exit."""
    try:
        wait_for("earlier app instances to exit", lambda: app_pid(BINARY) is None, timeout=timeout)
    except AssertionError:
        while (pid := app_pid(BINARY)) is not None:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)


def test_single_instance_and_quit(results):
    """A second launch hands over and exits; Quit in the tray ends the app with status 0."""
    no_app_left()
    app_dir, env = fresh_env()
    app = subprocess.Popen([BINARY, "--hidden"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    name = "window on demand, single instance, then Quit from the tray exits 0"
    try:
        tray = Tray(app.pid)
        # In the tray only, no webview exists; "Open dashboard" creates the window on demand.
        assert "WebKitWebProces" not in names(descendants(app.pid)), names(descendants(app.pid))
        tray.click("Open dashboard")
        wait_for("the dashboard's web process", lambda: "WebKitWebProces" in names(descendants(app.pid)))
        second = subprocess.run([BINARY], env=env, capture_output=True, timeout=30)
        assert second.returncode == 0, f"second launch exited {second.returncode}"
        assert app.poll() is None, "the first instance must keep running"
        tray.click("Quit", ends_process=True)
        code = app.wait(20)
        assert code == 0, f"Quit exited {code}: {app.stderr.read()[-2000:]!r}"
        report(results, name)
    except Exception as e:  # noqa: BLE001
        report(results, name, e)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        shutil.rmtree(app_dir, ignore_errors=True)


def main():
    os.makedirs(SHOTS, exist_ok=True)
    for old in os.listdir(SHOTS):
        if old.startswith("app-FAILED-"):
            os.remove(os.path.join(SHOTS, old))
    results = []
    started = time.monotonic()
    test_window_and_tray(results)
    test_single_instance_and_quit(results)
    failed = [n for n, e in results if e is not None]
    print(f"# app under Xvfb: {time.monotonic() - started:.0f} s; screenshots in {SHOTS}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
