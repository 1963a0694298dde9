"""A warm screenshot through toolhost's MCP server against Chromium's own one-shot mode, measured
in the same run on the same page (a workspace HTML file, 1280x800):
  - toolhost: `screenshot` over MCP stdio; with --browser-ahead off the first call starts the
    browser (cold), later calls reuse it (warm), each in a target of its own. Warm is measured back
    to back and with 0.5 s (untimed) between calls, as an agent reading each result leaves; the
    ratio uses the latter;
  - toolhost's default (--browser-ahead auto over stdio): the browser starts when the client lists
    the tools, and the first shot comes 2 s later (untimed), as a model's first reply would;
  - anchor: `chromium --headless --screenshot --window-size=1280,800 URL`, a new browser each time.
Usage: python3 bench/screenshot.py TOOLHOST [CALLS] (or bench/run.sh screenshot)
"""
import os
import sys
import tempfile
import time

from mcpbench import Server, bench_workspace, report, time_spawns

PAGE = """<!doctype html><title>Bench</title><style>body{font-family:sans-serif;margin:2rem}</style>
<h1>Tags</h1><ul>""" + "".join(f"<li>tag-{i} <small>{i} posts</small></li>" for i in range(40)) + "</ul>"


def chromium():
    for path in ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"]:
        if os.access(path, os.X_OK):
            return path
    raise SystemExit("bench: chromium is missing; run scripts/setup.sh")


def main():
    toolhost = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as tmp:
        workspace, state = bench_workspace(tmp)
        with open(os.path.join(workspace, "page.html"), "w") as f:
            f.write(PAGE)
        shot = {"name": "screenshot", "arguments": {"url": "page.html", "width": 1280, "height": 800}}
        ahead = Server(toolhost, "serve", "--workspace", workspace, "--state-dir", state)
        ahead.request("tools/list", {})
        time.sleep(2)
        start = time.perf_counter()
        ahead.request("tools/call", shot)
        first = time.perf_counter() - start
        ahead.close()
        print(f"{'first screenshot (browser ahead, 2 s)':<38} {first * 1000:7.1f} ms")
        server = Server(toolhost, "serve", "--workspace", workspace, "--state-dir", state, "--browser-ahead", "off")
        start = time.perf_counter()
        server.request("tools/call", shot)
        cold = time.perf_counter() - start
        print(f"{'first screenshot (browser start, cold)':<38} {cold * 1000:7.1f} ms")
        report("screenshot over MCP (warm, back to back)", server.time_calls("tools/call", shot, calls))
        # An agent reads each result before the next call; toolhost prepares the next page meanwhile.
        warm = report("screenshot over MCP (warm, 0.5 s apart)",
                      server.time_calls("tools/call", shot, calls, before=lambda: time.sleep(0.5)))
        server.close()
        out = os.path.join(tmp, "oneshot.png")
        command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                   f"--user-data-dir={tmp}/oneshot-profile", f"--screenshot={out}", "--window-size=1280,800",
                   "file://" + os.path.join(workspace, "page.html")]
        oneshot = report("chromium --headless --screenshot (cold)", time_spawns(command, calls, quiet=True))
        print(f"ratio warm / one-shot: {warm / oneshot:.3f}   (goal <= 0.2: {'met' if warm / oneshot <= 0.2 else 'NOT met'})")
        print(f"ratio cold / one-shot: {cold * 1000 / oneshot:.2f}")
        print(f"ratio first shot with the browser ahead / one-shot: {first * 1000 / oneshot:.2f}   (goal <= 1.0: {'met' if first * 1000 / oneshot <= 1 else 'NOT met'})")


if __name__ == "__main__":
    main()
