"""A big write_file over MCP stdio: wall time and the server's peak memory, beside the anchor
measured in the same run: a minimal Python stdio server that reads the same line, json.loads it
and writes the file (the least any server does with it).

The content is source-like (40-character lines, so a newline escape every 41 bytes), which is
what an agent writes; a message without escapes would flatter the parser.
Usage: python3 bench/big_write.py TOOLHOST [MEGABYTES] (or bench/run.sh big-write)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from mcpbench import Server, bench_workspace

ANCHOR = r"""
import json, os, sys
line = sys.stdin.buffer.readline()
message = json.loads(line)
arguments = message["params"]["arguments"]
with open(os.path.join(sys.argv[1], arguments["path"]), "w") as f:
    f.write(arguments["content"])
sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": {"content": []}}) + "\n")
sys.stdout.flush()
with open("/proc/self/status") as f:
    sys.stderr.write([l for l in f if l.startswith("VmHWM")][0])
"""


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int([l for l in f if l.startswith("VmHWM")][0].split()[1]) / 1024


def main():
    toolhost = sys.argv[1]
    megabytes = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    line = "const value = compute(input, 42); // ok\n"
    content = line * (megabytes * 1_000_000 // len(line))
    arguments = {"path": "big.js", "content": content}
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "write_file", "arguments": arguments}}
    wire = (json.dumps(message) + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:
        workspace, state = bench_workspace(tmp)
        server = Server(toolhost, "serve", "--workspace", workspace, "--state-dir", state)
        before = peak_rss_mb(server.proc.pid)
        started = time.perf_counter()
        server.next_id += 1
        message["id"] = server.next_id
        server.proc.stdin.write((json.dumps(message) + "\n").encode())
        server.proc.stdin.flush()
        reply = json.loads(server.proc.stdout.readline())
        seconds = time.perf_counter() - started
        peak = peak_rss_mb(server.proc.pid)
        server.close()
        if reply.get("error") or reply.get("result", {}).get("isError"):
            raise SystemExit(f"write_file failed: {str(reply)[:500]}")
        if os.path.getsize(os.path.join(workspace, "big.js")) != len(content):
            raise SystemExit("write_file wrote a file of the wrong size")

        started = time.perf_counter()
        anchor = subprocess.run([sys.executable, "-c", ANCHOR, workspace], input=wire, capture_output=True, check=True)
        anchor_seconds = time.perf_counter() - started
        anchor_peak = int(anchor.stderr.split()[1]) / 1024

    size = len(wire) / 1e6
    print(f"write_file {size:.1f} MB message over stdio   {seconds:7.3f} s   peak RSS {peak:6.1f} MiB (idle {before:.1f})")
    print(f"anchor: python json.loads + write        {anchor_seconds:7.3f} s   peak RSS {anchor_peak:6.1f} MiB")
    print(f"ratio write_file / anchor:       {seconds / anchor_seconds:5.2f}x")
    print(f"ratio peak RSS / message size:   {peak / (len(wire) / 1048576):5.2f}x")


main()
