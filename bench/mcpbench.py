"""A raw newline-delimited JSON-RPC MCP client over stdio and timing helpers, shared by the
benchmarks: no client library sits between the figures and the servers."""
import json
import os
import re
import statistics
import subprocess
import threading
import time


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def report(name, samples):
    mean = statistics.mean(samples) * 1000
    print(f"{name:<38} mean {mean:7.3f} ms   p50 {percentile(samples, .5)*1000:7.3f} ms   "
          f"p99 {percentile(samples, .99)*1000:7.3f} ms   (n={len(samples)})")
    return mean


def time_spawns(command, calls, quiet=False):
    samples = []
    sink = subprocess.DEVNULL if quiet else None
    for _ in range(calls):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=sink, stderr=sink)
        samples.append(time.perf_counter() - start)
    return samples


BWRAP = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--tmpfs", "/tmp", "bash", "-c", "true"]


class Server:
    """Any MCP server started as `command`, spoken to over its stdin and stdout."""

    def __init__(self, *command):
        self.proc = subprocess.Popen(
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message):
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        while True:
            reply = json.loads(self.proc.stdout.readline())
            if reply.get("id") == self.next_id:
                if "error" in reply or reply.get("result", {}).get("isError"):
                    raise SystemExit(f"{method} failed: {reply}")
                return reply

    def time_calls(self, method, params, calls, before=None):
        """Times `calls` requests after a warm-up; `before` runs ahead of each one, untimed."""
        for _ in range(min(20, calls)):  # warm up
            self.request(method, params)
        samples = []
        for _ in range(calls):
            if before:
                before()
            start = time.perf_counter()
            self.request(method, params)
            samples.append(time.perf_counter() - start)
        return samples

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)




def bench_workspace(tmp):
    """A workspace with a 40-line README.md inside `tmp`; returns (workspace, state dir)."""
    workspace = os.path.join(tmp, "ws")
    os.mkdir(workspace)
    with open(os.path.join(workspace, "README.md"), "w") as f:
        f.write("# bench\n" * 40)
    return workspace, os.path.join(tmp, "state")


def start_http(toolhost, workspace, state, *extra):
    """`toolhost serve --http` on a free loopback port; returns (process, port). Its log is
    drained on a thread of its own, so the server never blocks on it."""
    server = subprocess.Popen(
        [toolhost, "serve", "--http", "127.0.0.1:0", "--workspace", workspace, "--state-dir", state, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in server.stderr:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/mcp", line)
        if match:
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            return server, int(match.group(1))
    raise SystemExit(f"{toolhost} serve --http exited before it listened (exit {server.wait()})")
