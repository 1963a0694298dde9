"""Shell isolation over `toolhost serve --http`, with the Python `mcp` client's default Client.

Usage: mcp_handles.py MODE URL [ARGS...]; prints one JSON object for the Swift tests.
  isolation URL CLIENT_MODE   two default clients ("auto": 2026-07-28, "legacy": initialize) at once:
                              the first exports a variable and cd's; the second looks for both;
                              then the first carries on with its handle (the "session" argument)
  naming URL                  raw requests naming sessions: a made-up name, an unknown handle, a
                              handshake naming another's handle, and a handle passed as a header
"""
import asyncio
import http.client
import json
import sys
import urllib.parse

from mcp import Client

ENVELOPE = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


def text_of(result):
    return "\n".join(c.text for c in result.content if c.type == "text")


def handle_of(result):
    return (result.meta or {}).get("toolhost/session")


async def isolation(url, mode):
    first_ready, second_done = asyncio.Event(), asyncio.Event()
    seen = {}

    async def first():
        async with Client(url, mode=mode) as client:
            made = await client.call_tool("execute", {"command": "export API_KEY=alpha-key; mkdir -p mine && cd mine && echo made"})
            seen["first_handle"] = handle_of(made)
            seen["first_note"] = text_of(made)
            first_ready.set()
            await second_done.wait()
            again = {"command": "echo key=$API_KEY; pwd"}
            if seen["first_handle"]:
                again["session"] = seen["first_handle"]
            seen["first_again"] = text_of(await client.call_tool("execute", again))

    async def second():
        await first_ready.wait()
        async with Client(url, mode=mode) as client:
            looked = await client.call_tool("execute", {"command": "echo key=$API_KEY; pwd"})
            seen["second"] = text_of(looked)
            seen["second_handle"] = handle_of(looked)
        second_done.set()

    await asyncio.gather(first(), second())
    return seen


def post(url, body, headers=None):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if "_meta" in (body.get("params") or {}):
        base.update({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": body["method"]})
        if body["method"] == "tools/call":
            base["Mcp-Name"] = body["params"]["name"]
    connection.request("POST", parts.path, json.dumps(body), {**base, **(headers or {})})
    response = connection.getresponse()
    data = response.read().decode()
    events = [json.loads(line[6:]) for line in data.split("\n") if line.startswith("data: ")]
    message = events[-1] if events else (json.loads(data) if data.strip().startswith("{") else None)
    return response.status, response.getheader("Toolhost-Session"), message


def call(url, command, headers=None, session=None):
    arguments = {"command": command}
    if session:
        arguments["session"] = session
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "execute", "arguments": arguments, "_meta": ENVELOPE}}
    return post(url, body, headers)


def naming(url):
    seen = {}
    status, handle, message = call(url, "mkdir -p kept && cd kept && export KEPT=yes")
    seen["minted"] = {"status": status, "header": handle, "meta": ((message or {}).get("result") or {}).get("_meta", {}).get("toolhost/session")}
    status, _, message = call(url, "echo kept=$KEPT; pwd", headers={"Toolhost-Session": handle})
    seen["by_header"] = {"status": status, "text": message["result"]["content"][0]["text"]}
    status, _, message = call(url, "echo kept=$KEPT; pwd", session=handle)
    seen["by_argument"] = {"status": status, "content": message["result"]["content"]}
    status, _, message = call(url, "echo kept=$KEPT", headers={"Toolhost-Session": "alice"})
    seen["made_up"] = {"status": status, "message": (message or {}).get("error", {}).get("message")}
    status, _, message = call(url, "echo kept=$KEPT", session="th-" + "0" * 32)
    seen["unknown"] = {"status": status, "message": (message or {}).get("error", {}).get("message")}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "execute", "arguments": {"command": "true", "session": 5}, "_meta": ENVELOPE}}
    seen["not_a_string"] = post(url, body)[0]
    seen["header_and_argument_differ"] = call(url, "true", headers={"Toolhost-Session": handle}, session="th-" + "1" * 32)[0]
    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
    status, _, _ = post(url, initialize, {"Toolhost-Session": "alice"})
    seen["handshake_made_up"] = status
    status, _, _ = post(url, initialize, {"Toolhost-Session": handle})
    seen["handshake_live_handle"] = status
    status, given, _ = post(url, initialize)
    seen["handshake_default"] = {"status": status, "header": given}
    return seen


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "isolation":
        print(json.dumps(asyncio.run(isolation(url, sys.argv[3]))))
    else:
        print(json.dumps(naming(url)))
