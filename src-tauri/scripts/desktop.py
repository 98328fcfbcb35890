"""Helpers to drive the real app on a virtual display: WebDriver over plain HTTP, the tray menu over
D-Bus (gdbus), and process accounting from /proc. Standard library only.

Used by e2e.py (the tests) and bench.py (the resource figures). Both run inside
`xvfb-run ... dbus-run-session -- python3 ...` (see test-xvfb.sh and bench.sh).
"""

import base64
import http.client
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHOTS = os.path.join(ROOT, "target", "screenshots")


def wait_for(what, check, timeout=20.0, every=0.2):
    """Polls `check()` until it returns something truthy; raises with `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling; report the last failure
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


# ---------------------------------------------------------------- WebDriver (W3C, raw HTTP)

class WebDriver:
    ELEMENT = "element-6066-11e4-a52e-4f735466cecc"

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"
        self.session = None

    def _req(self, method, path, body=None, timeout=60, retry=False, before_retry=None):
        """One WebDriver command. With `retry` (reads only: status, screenshots, reading the DOM), a
        connection the driver dropped before answering is tried again, twice at most. A command
        that is not a read may be retried too when `before_retry()` undoes what a dropped attempt
        may have done; it runs before each new attempt."""
        data = json.dumps(body).encode() if body is not None else None
        attempts = 3 if retry or before_retry else 1
        for attempt in range(attempts):
            req = urllib.request.Request(self.base + path, data=data, method=method,
                                         headers={"content-type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return json.loads(r.read() or b"{}").get("value")
            except urllib.error.HTTPError as e:
                raise AssertionError(f"WebDriver {method} {path}: {e.code} {e.read()[:400]!r}") from None
            except (http.client.RemoteDisconnected, ConnectionResetError) as e:
                if attempt == attempts - 1:
                    raise AssertionError(f"WebDriver {method} {path}: {e}") from None
                print(f"# WebDriver {method} {path}: {e}; sending it again", flush=True)
                time.sleep(1)
                if before_retry:
                    before_retry()

    def ready(self):
        return self._req("GET", "/status", timeout=2, retry=True)

    def start(self, application, args=(), on_dropped=None):
        """Opens a session, which launches `application`. If the driver drops the connection
        without answering (seen once under heavy load: tauri-driver answered /status before
        WebKitWebDriver could take the session), `on_dropped()` runs (it should end any instance
        the attempt launched and wait for the driver) and the session is asked for again, at
        most twice; without `on_dropped`, the first drop fails."""
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "wry",
            "tauri:options": {"application": application, "args": list(args)},
        }}}
        value = self._req("POST", "/session", caps, timeout=120, before_retry=on_dropped)
        self.session = value["sessionId"]

    def quit(self):
        if self.session:
            try:
                self._req("DELETE", f"/session/{self.session}", timeout=20)
            finally:
                self.session = None

    def s(self, method, path, body=None, retry=False):
        return self._req(method, f"/session/{self.session}{path}", body, retry=retry)

    def js(self, script, *args, idempotent=False):
        """Runs `script` in the page. `idempotent` (it only reads the page, or sets values that
        are the same when set twice): safe to send again if the driver drops the connection."""
        return self.s("POST", "/execute/sync", {"script": script, "args": list(args)}, retry=idempotent)

    def read(self, script, *args):
        return self.js(script, *args, idempotent=True)

    def find(self, css):
        return self.s("POST", "/element", {"using": "css selector", "value": css})[self.ELEMENT]

    def click(self, css):
        """Clicks through the DOM: WebKitWebDriver's synthesized pointer clicks drop the connection
        on this setup (no window manager), so the element's own click() is used."""
        wait_for(f"element {css}", lambda: self.js(
            "const e = document.querySelector(arguments[0]); if (!e || e.disabled) return false; e.click(); return true;",
            css))

    def text(self, css):
        return self.read("const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css)

    def attr(self, css, name):
        return self.read("const e = document.querySelector(arguments[0]); return e ? e.getAttribute(arguments[1]) : null;",
                       css, name)

    def wait_attr(self, css, name, want, timeout=20):
        return wait_for(f"{css}[{name}={want}]", lambda: self.attr(css, name) == want, timeout)

    # WebKitGTK's WebDriver screenshot waits for the page's next repaint. The app renders without
    # GPU compositing, and then WebKit's own "draw once more" request does not produce one (seen
    # with 2.50): on a page where nothing changes (the activity panel, empty) the screenshot waited
    # forever, and it returned as soon as anything on the page changed. So while a screenshot is
    # pending, a 1-pixel, practically transparent element in a corner changes colour every 50 ms
    # (for at most 10 s); the app's own rendering is not involved.
    PULSE_ON = """
        let e = document.getElementById('__wd-repaint');
        if (!e) {
            e = document.createElement('div');
            e.id = '__wd-repaint';
            e.setAttribute('aria-hidden', 'true');
            e.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;pointer-events:none;z-index:2147483647';
            document.documentElement.append(e);
        }
        clearInterval(window.__wdRepaint);
        let n = 0;
        window.__wdRepaint = setInterval(() => {
            e.style.background = ++n % 2 ? 'rgba(0,0,0,0.004)' : 'rgba(255,255,255,0.004)';
            if (n > 200) clearInterval(window.__wdRepaint);
        }, 50);
        return true;"""
    PULSE_OFF = "clearInterval(window.__wdRepaint); document.getElementById('__wd-repaint')?.remove(); return true;"

    def screenshot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        path = os.path.join(SHOTS, name)
        self.js(self.PULSE_ON, idempotent=True)
        try:
            data = self.s("GET", "/screenshot", retry=True)
        finally:
            try:
                self.js(self.PULSE_OFF, idempotent=True)
            except AssertionError:
                pass
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path


# ---------------------------------------------------------------- the tray over D-Bus

def gdbus(dest, path, method, *args, timeout=10):
    """Calls `method` on the session bus; `--` keeps arguments like -1 from reading as options."""
    out = subprocess.run(["gdbus", "call", "--session", "--dest", dest, "--object-path", path,
                          "--method", method, "--", *args], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout


class Tray:
    """The Ayatana tray of one process: its menu at /org/ayatana/NotificationItem/<id>/Menu."""

    def __init__(self, pid):
        self.pid = pid
        self.dest, self.path = wait_for("the tray on D-Bus", self._find, timeout=60)

    def _find(self):
        if not os.path.exists(f"/proc/{self.pid}"):
            raise AssertionError(f"process {self.pid} exited before its tray appeared")
        bus = ("org.freedesktop.DBus", "/org/freedesktop/DBus")
        names = re.findall(r"'(:[0-9.]+)'", gdbus(*bus, "org.freedesktop.DBus.ListNames"))
        for name in names:
            try:
                owner = gdbus(*bus, "org.freedesktop.DBus.GetConnectionUnixProcessID", name)
            except RuntimeError:
                continue
            if f"uint32 {self.pid}," not in owner:
                continue
            try:
                xml = gdbus(name, "/org/ayatana/NotificationItem", "org.freedesktop.DBus.Introspectable.Introspect")
            except (RuntimeError, subprocess.TimeoutExpired):
                continue
            for node in re.findall(r'<node name="([^"]+)"', xml):
                return name, f"/org/ayatana/NotificationItem/{node}/Menu"
        return None

    def items(self):
        """{label: id} of the menu's items (underscores of mnemonics removed)."""
        layout = gdbus(self.dest, self.path, "com.canonical.dbusmenu.GetLayout", "0", "-1", "[]")
        found = {}
        for item_id, props in re.findall(r"\((\d+), \{([^}]*)\}", layout):
            label = re.search(r"'label': <'([^']*)'>", props)
            if label:
                found[label.group(1).replace("_", "")] = int(item_id)
        return found

    def click(self, label, ends_process=False):
        """Clicks the item `label`. With `ends_process` (Quit), the process may exit before it
        answers the click: the bus then reports that it left without replying, which is the click
        taking effect, not a failure (the caller checks how the process ended)."""
        items = self.items()
        if label not in items:
            raise AssertionError(f"no tray item {label!r} in {sorted(items)}")
        try:
            gdbus(self.dest, self.path, "com.canonical.dbusmenu.Event", str(items[label]), "clicked",
                  "<int32 0>", "uint32 0")
        except RuntimeError as e:
            if not (ends_process and "org.freedesktop.DBus.Error.NoReply" in str(e)):
                raise


# ---------------------------------------------------------------- processes from /proc

def descendants(pid):
    """`pid` and every process below it."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def memory_kib(pids):
    """(RSS, PSS) in KiB summed over `pids` (PSS splits shared pages fairly between processes)."""
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            pass
    return total


def names(pids):
    out = []
    for p in pids:
        try:
            with open(f"/proc/{p}/comm") as f:
                out.append(f.read().strip())
        except OSError:
            pass
    return out
