"""Per-call cost of toolhost's tools over MCP stdio, beside the anchors measured in the same run:
spawning bash directly, and bubblewrap confining it.

Speaks raw newline-delimited JSON-RPC to `toolhost serve` (no client library in the way), so the
figures are the server's and the transport's. Prints one line per measurement and the ratios.
Usage: python3 bench/mcp_stdio.py TOOLHOST [CALLS] (or bench/run.sh mcp-stdio)
"""
import os
import shutil
import sys
import tempfile

from mcpbench import BWRAP, Server, bench_workspace, report, time_spawns


def main():
    toolhost = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    with tempfile.TemporaryDirectory() as tmp:
        workspace, state = bench_workspace(tmp)
        server = Server(toolhost, "serve", "--workspace", workspace, "--state-dir", state)
        listing = report("tools/list (transport round trip)", server.time_calls("tools/list", {}, calls))
        read = report("read_file README.md (40 lines)", server.time_calls(
            "tools/call", {"name": "read_file", "arguments": {"path": "README.md"}}, calls))
        execute = report('execute {"command":"true"} (sandboxed)', server.time_calls(
            "tools/call", {"name": "execute", "arguments": {"command": "true"}}, calls))
        server.close()
        loose = Server(toolhost, "serve", "--workspace", workspace, "--state-dir", state, "--unconfined")
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
