"""Drives `toolhost serve` from agent frameworks, with scripted models standing in for an LLM.

Usage: agent_frameworks.py FRAMEWORK TOOLHOST WORKSPACE STATE_DIR
  pydantic-ai  an Agent whose FunctionModel calls write_file, then execute and read_file with every
               optional parameter null (as pydantic-model clients send them); what the model got
               back is recorded, since pydantic-ai hands it the structured content when there is one
  mcp-use      MCPClient sessions over stdio: list the tools, call execute with nulls for optionals
               (mcp-use 1.7 imports what mcp 2.x removed: it runs from .venv-mcp-use, with mcp 1.30)
Prints one JSON object for the Swift test.
"""
import asyncio
import json
import sys


def server_config(toolhost, workspace, state):
    return {"mcpServers": {"toolhost": {
        "command": toolhost, "args": ["serve", "--workspace", workspace, "--state-dir", state]}}}


async def pydantic_ai(toolhost, workspace, state):
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
    from pydantic_ai.mcp import MCPToolset
    from pydantic_ai.models.function import FunctionModel

    script = [
        ("write_file", {"path": "notes.txt", "content": "alpha\nbeta\n"}),
        ("execute", {"command": "cat notes.txt", "timeout_seconds": None, "background": None}),
        ("read_file", {"path": "notes.txt", "offset": None, "limit": None}),
    ]
    returns = []

    def model(messages, info):
        for message in messages:
            for part in getattr(message, "parts", []):
                if isinstance(part, ToolReturnPart) and part.tool_call_id not in [r["id"] for r in returns]:
                    content = part.content
                    returns.append({"id": part.tool_call_id, "tool": part.tool_name,
                                    "content": content if isinstance(content, str) else json.dumps(content, default=str)})
        step = len(returns)
        if step < len(script):
            name, args = script[step]
            return ModelResponse(parts=[ToolCallPart(tool_name=name, args=args, tool_call_id=f"call-{step}")])
        return ModelResponse(parts=[TextPart("done")])

    toolset = MCPToolset(server_config(toolhost, workspace, state))
    agent = Agent(FunctionModel(model), toolsets=[toolset])
    async with agent:
        result = await agent.run("go")
    return {"output": result.output, "returns": returns}


async def mcp_use(toolhost, workspace, state):
    from mcp_use import MCPClient

    client = MCPClient.from_dict(server_config(toolhost, workspace, state))
    session = await client.create_session("toolhost")
    tools = await session.list_tools()
    first = await session.call_tool("execute", {"command": "mkdir -p d && cd d && echo made", "timeout_seconds": None, "background": None})
    second = await session.call_tool("execute", {"command": "pwd", "timeout_seconds": None, "background": False})
    await client.close_all_sessions()

    def text(result):
        return "\n".join(c.text for c in result.content if getattr(c, "type", "") == "text")

    return {"tools": [t.name for t in tools], "first": text(first), "first_error": bool(first.isError),
            "second": text(second), "second_error": bool(second.isError)}


framework, toolhost, workspace, state = sys.argv[1:5]
run = {"pydantic-ai": pydantic_ai, "mcp-use": mcp_use}[framework]
print(json.dumps(asyncio.run(run(toolhost, workspace, state))))
