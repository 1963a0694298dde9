"""Drives `toolhost serve --http` with the official Python MCP client (streamable HTTP).

Usage: mcp_http_client.py MODE URL [ARGS...]; prints one JSON object for the Swift tests.
  basic URL                     list the tools, call read_file and execute
  two URL                       two clients at once, each cd's into its own folder
  load URL CLIENTS CALLS        CLIENTS clients x CALLS read_file calls; counts errors and checks state
  session URL NAME COMMAND...   in session NAME (Toolhost-Session header), run each command in turn
  after URL                     one client leaves an export and a cwd, then a new client looks and runs git_status
"""
import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def text_of(result):
    return "\n".join(c.text for c in result.content if c.type == "text")


async def with_session(url, body, name=None):
    headers = {"Toolhost-Session": name} if name else {}
    async with create_mcp_http_client(headers=headers) as http:
        async with streamable_http_client(url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                return await body(session)


async def basic(url):
    async def body(session):
        tools = await session.list_tools()
        read = await session.call_tool("read_file", {"path": "hello.txt"})
        run = await session.call_tool("execute", {"command": "echo $((6*7))"})
        return {"tools": [t.name for t in tools.tools], "read": text_of(read), "execute": text_of(run)}
    return await with_session(url, body)


async def two(url):
    async def client(folder):
        async def body(session):
            await session.call_tool("execute", {"command": f"mkdir -p {folder} && cd {folder}"})
            await asyncio.sleep(0.2)  # let the other client cd meanwhile
            return text_of(await session.call_tool("execute", {"command": "pwd"}))
        return await with_session(url, body)
    first, second = await asyncio.gather(client("one"), client("two"))
    return {"first": first, "second": second}


async def after(url):
    async def leaver(session):
        await session.call_tool("execute", {"command": "export LEFT=behind; mkdir -p away && cd away"})
    await with_session(url, leaver)

    async def newcomer(session):
        looked = text_of(await session.call_tool("execute", {"command": 'echo "[$LEFT]"; pwd'}))
        status = await session.call_tool("git_status", {})
        return {"looked": looked, "status": text_of(status), "status_error": status.is_error}
    return await with_session(url, newcomer)


async def load(url, clients, calls):
    async def client(index):
        async def body(session):
            await session.call_tool("execute", {"command": f"mkdir -p c{index} && cd c{index} && echo {index} > mine.txt"})
            errors = 0
            for _ in range(calls):
                result = await session.call_tool("read_file", {"path": f"c{index}/mine.txt"})
                if result.is_error or not text_of(result).startswith(f"     1\t{index}"):
                    errors += 1
            pwd = text_of(await session.call_tool("execute", {"command": "pwd"}))
            return errors, pwd.split("\n")[0].endswith(f"/c{index}")
        return await with_session(url, body)
    results = await asyncio.gather(*(client(i) for i in range(clients)), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    good = [r for r in results if not isinstance(r, BaseException)]
    return {
        "client_failures": [repr(f) for f in failed],
        "errors": sum(e for e, _ in good),
        "intact": all(ok for _, ok in good) and len(good) == clients,
    }


async def session_mode(url, name, commands):
    async def body(session):
        outputs = []
        for command in commands:
            outputs.append(text_of(await session.call_tool("execute", {"command": command})))
            print(json.dumps({"progress": len(outputs)}), flush=True)
        return {"outputs": outputs}
    return await with_session(url, body, name=name)


def main():
    mode, url, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "basic":
        out = asyncio.run(basic(url))
    elif mode == "two":
        out = asyncio.run(two(url))
    elif mode == "after":
        out = asyncio.run(after(url))
    elif mode == "load":
        out = asyncio.run(load(url, int(rest[0]), int(rest[1])))
    else:
        out = asyncio.run(session_mode(url, rest[0], rest[1:]))
    print(json.dumps(out))


main()
