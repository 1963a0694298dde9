"""read_file over MCP Streamable HTTP: throughput (calls/s) and p50/p99 latency with 1 and 8
clients, each with its own session and keep-alive connection, speaking raw HTTP (no client library).
Usage: python3 bench/mcp_http.py TOOLHOST [CALLS_PER_CLIENT]
"""
import http.client
import json
import os
import sys
import tempfile
import threading
import time

from mcpbench import bench_workspace, percentile, start_http

HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2025-06-18"}


class Client:
    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port)
        self.headers = dict(HEADERS)
        self.next_id = 0
        reply, session = self.post({"method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        self.headers["Mcp-Session-Id"] = session
        self.post({"method": "notifications/initialized"}, notification=True)

    def post(self, message, notification=False):
        message = dict(message, jsonrpc="2.0")
        if not notification:
            self.next_id += 1
            message["id"] = self.next_id
        self.connection.request("POST", "/mcp", json.dumps(message), self.headers)
        response = self.connection.getresponse()
        body = response.read().decode()
        if notification:
            return None, None
        data = [line[5:].strip() for line in body.splitlines() if line.startswith("data:") and line[5:].strip()]
        reply = json.loads(data[-1] if data else body)
        if "error" in reply or reply.get("result", {}).get("isError"):
            raise SystemExit(f"call failed: {reply}")
        return reply, response.getheader("Mcp-Session-Id")


def run_clients(port, clients, calls):
    latencies = []
    lock = threading.Lock()
    ready = [Client(port) for _ in range(clients)]
    for client in ready:  # warm up
        for _ in range(20):
            client.post({"method": "tools/call", "params": {"name": "read_file", "arguments": {"path": "README.md"}}})

    def work(client):
        mine = []
        for _ in range(calls):
            start = time.perf_counter()
            client.post({"method": "tools/call", "params": {"name": "read_file", "arguments": {"path": "README.md"}}})
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(c,)) for c in ready]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    total = clients * calls
    print(f"read_file over HTTP, {clients} client(s): {total / wall:8.0f} calls/s   "
          f"p50 {percentile(latencies, .5)*1000:6.3f} ms   p99 {percentile(latencies, .99)*1000:6.3f} ms   (n={total})")


def main():
    toolhost = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with tempfile.TemporaryDirectory() as tmp:
        workspace, state = bench_workspace(tmp)
        server, port = start_http(toolhost, workspace, state)
        try:
            run_clients(port, 1, calls)
            run_clients(port, 8, calls // 2)
        finally:
            server.terminate()
            server.wait(timeout=30)


main()
