"""`toolhost serve` over stdio from exec to its reply to initialize (which does not wait for the
sandbox: the session opens meanwhile), and to the reply to a first `execute true` (the mechanisms
probe, the runner's setup and the session's load included), and its RSS once idle, beside the
anchor measured in the same run: `toolhost --version`, the same binary's own load and nothing else.
Usage: python3 bench/serve_start.py TOOLHOST [STARTS]
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from mcpbench import report, time_spawns

INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}) + "\n"
EXECUTE = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
    "name": "execute", "arguments": {"command": "true"}}}) + "\n"


def idle_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    toolhost = sys.argv[1]
    starts = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    samples, ready, rss = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(tmp + "/ws")
        for index in range(starts):
            start = time.perf_counter()
            server = subprocess.Popen(
                [toolhost, "serve", "--workspace", tmp + "/ws", "--state-dir", tmp + "/state", "--session", f"s{index}"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            server.stdin.write(INITIALIZE.encode())
            server.stdin.flush()
            reply = json.loads(server.stdout.readline())
            samples.append(time.perf_counter() - start)
            if "result" not in reply:
                sys.exit(f"serve answered initialize with {reply}")
            server.stdin.write(EXECUTE.encode())
            server.stdin.flush()
            reply = json.loads(server.stdout.readline())
            ready.append(time.perf_counter() - start)
            if reply.get("result", {}).get("isError") is not False:
                sys.exit(f"serve answered the first execute with {reply}")
            time.sleep(0.2)
            rss.append(idle_rss_mib(server.pid))
            server.stdin.close()
            server.wait(timeout=30)
    mine = report("serve start to the initialize reply", samples)
    first = report("serve start to the first execute's reply", ready)
    anchor = report("anchor: toolhost --version", time_spawns([toolhost, "--version"], starts, quiet=True))
    rss.sort()
    print(f"idle RSS after initialize: p50 {rss[len(rss) // 2]:.1f} MiB")
    print(f"ratio serve start / --version: {mine / anchor:5.2f}x  (what serve adds to the process's own load: {mine - anchor:.1f} ms)")
    print(f"ratio first execute / --version: {first / anchor:5.2f}x")


main()
