"""Drives `toolhost serve` with the official Python MCP client over stdio.

Usage: mcp_stdio_client.py TOOLHOST WORKSPACE STATE_DIR MODE
MODE "full" calls every tool; "pwd" only asks the shell where it is (after a restart);
"screenshot" takes a screenshot of a workspace page.
Prints one JSON object with what it saw; the Swift test asserts on it.
"""
import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def text_of(result):
    return "\n".join(c.text for c in result.content if c.type == "text")


async def main(toolhost, workspace, state_dir, mode):
    params = StdioServerParameters(
        command=toolhost, args=["serve", "--workspace", workspace, "--state-dir", state_dir]
    )
    seen = {}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            if mode == "screenshot":
                await session.call_tool("write_file", {"path": "page.html", "content": "<title>Shot</title><h1>Hi</h1>"})
                r = await session.call_tool("screenshot", {"url": "page.html", "width": 640, "height": 480})
                seen["isError"] = r.is_error
                seen["text"] = text_of(r)
                seen["images"] = [{"mimeType": c.mime_type, "bytes": len(c.data)} for c in r.content if c.type == "image"]
                print(json.dumps(seen))
                return
            if mode == "pwd":
                seen["pwd"] = text_of(await session.call_tool("execute", {"command": "pwd"}))
                print(json.dumps(seen))
                return
            tools = await session.list_tools()
            seen["tools"] = [t.name for t in tools.tools]
            seen["schemas_are_objects"] = all(
                t.input_schema.get("type") == "object" and "properties" in t.input_schema for t in tools.tools
            )

            calls = {
                "write_file": {"path": "notes/a.txt", "content": "alpha\nbeta\n"},
                "read_file": {"path": "notes/a.txt"},
                "edit_file": {"path": "notes/a.txt", "old_string": "beta", "new_string": "gamma"},
                "grep": {"pattern": "gam+a"},
                "glob": {"pattern": "*.txt"},
                "execute": {"command": "cd notes && cat a.txt"},
            }
            git_calls = [
                # A command cannot create the repository; git_commit does, on the host.
                ("execute", {"command": "(cd .. && git init -q -b main)"}),
                ("git_commit", {"message": "docs: add notes", "paths": ["notes"]}),
                ("git_branch", {"name": "run-1"}),
                ("git_status", {}),
                ("git_diff", {}),
                ("git_push", {}),
            ]
            seen["calls"] = {}
            for name, args in calls.items():
                r = await session.call_tool(name, args)
                seen["calls"][name] = {"isError": r.is_error, "text": text_of(r)}

            r = await session.call_tool("execute", {"command": "pwd"})
            seen["pwd_after_cd"] = text_of(r)
            seen["git"] = {}
            for name, args in git_calls:
                r = await session.call_tool(name, args)
                seen["git"][name] = {"isError": r.is_error, "text": text_of(r)}
            r = await session.call_tool("read_file", {"path": "../outside"})
            seen["escape"] = {"isError": r.is_error, "text": text_of(r)}
            try:
                await session.call_tool("no_such_tool", {})
                seen["unknown"] = {"protocol_error": None}
            except Exception as error:  # an unknown tool is a protocol error (-32602), as the spec says
                detail = getattr(error, "error", None)
                seen["unknown"] = {"protocol_error": getattr(detail, "code", None), "text": getattr(detail, "message", str(error))}
            r = await session.call_tool("execute", {})
            seen["missing_param"] = {"isError": r.is_error, "text": text_of(r)}
    print(json.dumps(seen))


asyncio.run(main(*sys.argv[1:5]))
