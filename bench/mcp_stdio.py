"""Per-call cost of toolhost's tools over MCP stdio, beside the anchors measured in the same run:
spawning bash directly, and bubblewrap confining it.

Speaks raw newline-delimited JSON-RPC to `toolhost serve` (no client library in the way), so the
figures are the server's and the transport's. Prints one line per measurement and the ratios.
Usage: python3 bench/mcp_stdio.py TOOLHOST [CALLS]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def report(name, samples):
    mean = statistics.mean(samples) * 1000
    print(f"{name:<38} mean {mean:7.3f} ms   p50 {percentile(samples, .5)*1000:7.3f} ms   "
          f"p99 {percentile(samples, .99)*1000:7.3f} ms   (n={len(samples)})")
    return mean


def time_spawns(command, calls):
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        subprocess.run(command, check=True)
        samples.append(time.perf_counter() - start)
    return samples


BWRAP = ["bwrap", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--tmpfs", "/tmp", "bash", "-c", "true"]


class Server:
    def __init__(self, toolhost, workspace, state, *extra):
        self.proc = subprocess.Popen(
            [toolhost, "serve", "--workspace", workspace, "--state-dir", state, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
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

    def time_calls(self, method, params, calls):
        for _ in range(min(20, calls)):  # warm up
            self.request(method, params)
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            self.request(method, params)
            samples.append(time.perf_counter() - start)
        return samples

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def main():
    toolhost = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with tempfile.TemporaryDirectory() as tmp:
        workspace = os.path.join(tmp, "ws")
        os.mkdir(workspace)
        with open(os.path.join(workspace, "README.md"), "w") as f:
            f.write("# bench\n" * 40)
        server = Server(toolhost, workspace, os.path.join(tmp, "state"))
        listing = report("tools/list (transport round trip)", server.time_calls("tools/list", {}, calls))
        read = report("read_file README.md (40 lines)", server.time_calls(
            "tools/call", {"name": "read_file", "arguments": {"path": "README.md"}}, calls))
        execute = report('execute {"command":"true"} (sandboxed)', server.time_calls(
            "tools/call", {"name": "execute", "arguments": {"command": "true"}}, calls))
        server.close()
        loose = Server(toolhost, workspace, os.path.join(tmp, "state"), "--unconfined")
        unconfined = report('execute {"command":"true"} --unconfined', loose.time_calls(
            "tools/call", {"name": "execute", "arguments": {"command": "true"}}, calls))
        loose.close()

        bash = report("anchor: spawn bash -c true", time_spawns(["bash", "-c", "true"], calls))
        bwrap = None
        if shutil.which("bwrap"):
            bwrap = report("anchor: bwrap --unshare-all ... bash -c true", time_spawns(BWRAP, calls))

    print(f"ratio sandboxed execute / bwrap:      {execute / bwrap:5.2f}x" if bwrap else "bwrap: not installed")
    print(f"ratio sandboxed execute / bash spawn: {execute / bash:5.2f}x")
    print(f"ratio sandbox cost (sandboxed - unconfined execute): {execute - unconfined:6.3f} ms")
    print(f"ratio read_file / bash spawn:         {read / bash:5.2f}x")
    print(f"ratio tools/list / bash spawn:        {listing / bash:5.2f}x")


main()
