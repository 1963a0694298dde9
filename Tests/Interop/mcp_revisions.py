"""Drives `toolhost serve` with the Python `mcp` client's high-level Client, in each protocol era.

Usage: mcp_revisions.py TARGET MODE
  TARGET: "stdio:TOOLHOST:WORKSPACE:STATE_DIR" or an http://.../mcp URL
  MODE:   "auto" (server/discover, then 2026-07-28), "legacy" (initialize), or "2026-07-28" (pinned)
Lists the tools, checks that structured content is complete and that cwd persists, takes progress
for a three-second command, and cancels one by timing out on it (the caller checks it never
finished: `survived-cancel` must not exist). Prints one JSON object.
"""
import asyncio
import json
import sys
import time

from mcp import Client, StdioServerParameters


def text_of(result):
    return "\n".join(c.text for c in result.content if c.type == "text")


async def main(target, mode):
    if target.startswith("stdio:"):
        _, toolhost, workspace, state = target.split(":", 3)
        server = StdioServerParameters(command=toolhost, args=["serve", "--workspace", workspace, "--state-dir", state])
    else:
        server = target
    seen = {}
    async with Client(server, mode=mode) as client:
        seen["version"] = client.protocol_version
        tools = await client.list_tools()
        seen["tools"] = [t.name for t in tools.tools]
        seen["annotated"] = all(t.annotations is not None and t.output_schema is not None for t in tools.tools)
        made = await client.call_tool("execute", {"command": "mkdir -p deep && cd deep"})
        # Over HTTP at 2026-07-28 the shell is kept by its handle, passed back as an argument.
        handle = (made.meta or {}).get("toolhost/session")
        keep = {"session": handle} if handle else {}
        seen["handle"] = handle
        result = await client.call_tool("execute", {"command": "pwd; echo from-structured", **keep})
        seen["pwd"] = text_of(result)
        seen["structured_text"] = (result.structured_content or {}).get("text")
        updates = []

        async def progress(value, total, message):
            updates.append({"progress": value, "message": message})

        result = await client.call_tool(
            "execute", {"command": "for i in 1 2 3; do echo tick $i; sleep 1; done", **keep}, progress_callback=progress)
        seen["progress"] = updates
        seen["progress_result"] = text_of(result)
        started = time.monotonic()
        try:
            await client.call_tool("execute", {"command": "sleep 3 && touch survived-cancel", **keep}, read_timeout_seconds=1.5)
            seen["timeout"] = "no timeout"
        except Exception as error:  # the client gives up and cancels
            seen["timeout"] = type(error).__name__
        seen["gave_up_after"] = round(time.monotonic() - started, 1)
        await asyncio.sleep(2.5)  # past the command's three seconds: it would have touched the file by now
        seen["after_cancel"] = text_of(await client.call_tool("execute", {"command": "echo still-serving", **keep}))
    print(json.dumps(seen))


asyncio.run(main(sys.argv[1], sys.argv[2]))
