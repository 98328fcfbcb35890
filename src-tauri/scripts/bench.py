"""Resource figures of the running app, from /proc (run by bench.sh under Xvfb + a session bus).

Three phases, each a fresh start of the app in a temporary data folder:
  window open, sharing   — the dashboard visible, live stats pushed every second
  tray only, sharing     — started with --hidden
  tray only, paused      — started with --hidden, then paused from the tray
and, when bench.sh could build it (argument 2), the platform's floor measured the same way:
  bare WebKitGTK window  — webkit-floor.c: a GTK window, one web view, one line of HTML
  the same, lean         — with every WebKit setting that could lower memory (`--lean`)
Memory is summed over the app and every process below it (WebKit's web and network processes):
RSS (what `top` shows, shared pages counted in each process) and PSS (shared pages split fairly).
CPU is the processes' user+system time over the sampling window, as % of one core.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from desktop import Tray, cpu_ticks, descendants, memory_kib, names, wait_for

BINARY = os.path.abspath(sys.argv[1])
FLOOR = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
SETTLE_S = float(os.environ.get("GLEANER_BENCH_SETTLE", "6"))
SAMPLE_S = float(os.environ.get("GLEANER_BENCH_SAMPLE", "20"))
HZ = os.sysconf("SC_CLK_TCK")


def phase(label, args, pause=False, binary=BINARY):
    d = tempfile.mkdtemp(prefix="gleaner-bench-")
    with open(os.path.join(d, "app.json"), "w") as f:
        json.dump({"onboarded": True}, f)
    env = dict(os.environ, GLEANER_APP_DIR=d, RUST_LOG="warn")
    app = subprocess.Popen([binary, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        tray = Tray(app.pid) if binary == BINARY else None
        if pause:
            tray.click("Pause sharing")
            wait_for("paused", lambda: "Resume sharing" in tray.items())
        time.sleep(SETTLE_S)
        pids = descendants(app.pid)
        t0, c0 = time.monotonic(), cpu_ticks(pids)
        peak_rss = peak_pss = 0
        while time.monotonic() - t0 < SAMPLE_S:
            rss, pss = memory_kib(descendants(app.pid))
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(1)
        pids = descendants(app.pid)
        cpu = (cpu_ticks(pids) - c0) / HZ / (time.monotonic() - t0) * 100
        rss, pss = memory_kib(pids)
        each = ", ".join(f"{n} {memory_kib([p])[1] / 1024:.0f}" for p, n in zip(pids, names(pids)))
        print(f"{label:<24} processes={len(pids)}, PSS MiB each: {each}")
        print(f"{'':<24} memory RSS {rss / 1024:6.1f} MiB (peak {peak_rss / 1024:.1f})  "
              f"PSS {pss / 1024:6.1f} MiB (peak {peak_pss / 1024:.1f})  CPU {cpu:.2f}% of a core "
              f"over {SAMPLE_S:.0f} s", flush=True)
        if tray:
            tray.click("Quit", ends_process=True)
        else:
            app.terminate()
        app.wait(20)
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


def main():
    print(f"binary: {BINARY} ({os.path.getsize(BINARY) / 1e6:.1f} MB); settle {SETTLE_S:.0f} s, "
          f"sample {SAMPLE_S:.0f} s; targets: <= 150 MB in all, <= 1% of a core idle")
    phase("window open, sharing", [])
    phase("tray only, sharing", ["--hidden"])
    phase("tray only, paused", ["--hidden"], pause=True)
    if FLOOR:
        phase("bare WebKitGTK window", [], binary=FLOOR)
        phase("the same, lean settings", ["--lean"], binary=FLOOR)


if __name__ == "__main__":
    main()
