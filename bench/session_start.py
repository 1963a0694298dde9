"""A new sandboxed session and its first execute over MCP Streamable HTTP (initialize,
notifications/initialized, tools/call execute "true"), p50/p99, with 1, 100 and 1,000 sessions
already live; the server's RSS at each; beside the anchor measured in the same run: bubblewrap
starting a fresh sandbox for one `bash -c true`.

Live sessions each made one call (so none is evictable as unused); the measured ones are closed
again (DELETE), so the live count holds. At each level, calls in one more open session time a
warm execute too. Then the same start with `serve --warm-sessions 8`
beside a server without, both paced at one new session per 100 ms (clients that arrive apart,
so the pool can refill between them). Speaks raw HTTP over one keep-alive connection.
Usage: python3 bench/session_start.py TOOLHOST [STARTS] [LIVE,LIVE,...]
"""
import http.client
import json
import shutil
import sys
import tempfile
import time

from mcpbench import BWRAP, bench_workspace, percentile, report, start_http, time_spawns

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2025-11-25"}


class Connection:
    def __init__(self, port):
        self.http = http.client.HTTPConnection("127.0.0.1", port)

    def post(self, message, session=None):
        headers = dict(HEADERS, **({"Mcp-Session-Id": session} if session else {}))
        self.http.request("POST", "/mcp", json.dumps(dict(message, jsonrpc="2.0")), headers)
        response = self.http.getresponse()
        body = response.read().decode()
        if response.status >= 300:
            raise SystemExit(f"{message.get('method')}: HTTP {response.status} {body[:300]}")
        if "id" not in message:
            return None, None
        data = [line[5:].strip() for line in body.splitlines() if line.startswith("data:") and line[5:].strip()]
        reply = json.loads(data[-1] if data else body)
        if "error" in reply or reply.get("result", {}).get("isError"):
            raise SystemExit(f"{message.get('method')} failed: {reply}")
        return reply, response.getheader("Mcp-Session-Id")

    def start_session(self):
        """A new session and its first execute; returns the session id."""
        _, session = self.post({"id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        self.post({"method": "notifications/initialized"}, session)
        self.post({"id": 2, "method": "tools/call", "params": {"name": "execute", "arguments": {"command": "true"}}}, session)
        return session

    def close_session(self, session):
        self.http.request("DELETE", "/mcp", headers=dict(HEADERS, **{"Mcp-Session-Id": session}))
        self.http.getresponse().read()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("VmRSS")][0].split()[1]) / 1024


def paced(toolhost, tmp, starts, *extra):
    """p50 of `starts` new sessions, one per 100 ms, on a server started with `extra`."""
    workspace, state = bench_workspace(tempfile.mkdtemp(dir=tmp))
    server, port = start_http(toolhost, workspace, state, *extra)
    try:
        connection = Connection(port)
        samples = []
        for _ in range(starts):
            time.sleep(0.1)
            started = time.perf_counter()
            session = connection.start_session()
            samples.append(time.perf_counter() - started)
            connection.close_session(session)
        report(f"new session + first execute, paced, {' '.join(extra) or 'no pool'}", samples)
        return percentile(samples, .5)
    finally:
        server.terminate()
        server.wait(timeout=60)


def main():
    toolhost = sys.argv[1]
    starts = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    default = [1, 100, 1000] if starts >= 20 else [1, 10]  # a smoke run stays small
    levels = [int(n) for n in sys.argv[3].split(",")] if len(sys.argv) > 3 else default
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workspace, state = bench_workspace(tmp)
        server, port = start_http(toolhost, workspace, state, "--max-sessions", str(max(levels) + 16))
        try:
            connection = Connection(port)
            live = []
            for level in levels:
                while len(live) < level - 1:  # the measured session is the level-th
                    live.append(connection.start_session())
                for _ in range(min(5, starts)):  # warm up
                    connection.close_session(connection.start_session())
                samples = []
                for _ in range(starts):
                    started = time.perf_counter()
                    session = connection.start_session()
                    samples.append(time.perf_counter() - started)
                    connection.close_session(session)
                results[level] = percentile(samples, .5)
                report(f"new session + first execute, {level} live", samples)
                # A call in a session already open, with the others still live: a spawn's cost
                # must not grow with what the server holds for them.
                warm = connection.start_session()
                calls = []
                for index in range(starts):
                    started = time.perf_counter()
                    connection.post({"id": 10 + index, "method": "tools/call",
                                     "params": {"name": "execute", "arguments": {"command": "true"}}}, warm)
                    calls.append(time.perf_counter() - started)
                connection.close_session(warm)
                report(f"warm execute, {level} live", calls)
                print(f"server RSS with {level} live sessions: {rss_mib(server.pid):7.1f} MiB")
        finally:
            server.terminate()
            server.wait(timeout=60)
        cold = paced(toolhost, tmp, starts)
        warm = paced(toolhost, tmp, starts, "--warm-sessions", "8")
        print(f"ratio paced session start p50, --warm-sessions 8 / no pool: {warm / cold:5.2f}x")
    if shutil.which("bwrap"):
        anchor = report("anchor: bwrap --unshare-all ... bash -c true", time_spawns(BWRAP, starts))
        for level, p50 in results.items():
            print(f"ratio session start p50 / bwrap mean, {level} live: {p50 * 1000 / anchor:5.2f}x")
    else:
        print("bwrap: not installed (no anchor)")


main()
