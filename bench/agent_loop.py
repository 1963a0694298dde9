"""The agent loop's own cost per turn, model time excluded: a mock endpoint that answers at once.

Each of TURNS turns the scripted model calls read_file on a small file; the last turn answers.
The guardrails are off: the same read again and again is what is measured, not a loop to stop.
toolhost's per-turn time comes from its own transcript (first request to end, so start-up is
left out), with and without the tool's time. The anchor is the same conversation posted by a
bare Python http.client loop (keep-alive, no tools, no transcript) to the same mock: what the
HTTP round trip and the mock cost by themselves.
"""
import http.client, json, os, subprocess, sys, tempfile, time

bin, turns = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
tmp = tempfile.mkdtemp(prefix="toolhost-bench-loop-")
os.makedirs(f"{tmp}/ws")
open(f"{tmp}/ws/README.md", "w").write("# bench\n" * 20)
lines = ["model: bench-model", "turns:"]
for _ in range(turns):
    lines += ["  - reply:", "      tool_calls: [{name: read_file, arguments: {path: README.md}}]",
              "      usage: {prompt_tokens: 1000, completion_tokens: 20}"]
lines += ["  - reply: {text: done, usage: {prompt_tokens: 1000, completion_tokens: 2}}"]
open(f"{tmp}/script.yaml", "w").write("\n".join(lines) + "\n")


def mock():
    process = subprocess.Popen([bin, "mock-endpoint", "--script", f"{tmp}/script.yaml", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return process, process.stdout.readline().strip()


def toolhost_run():
    process, url = mock()
    try:
        subprocess.run([bin, "run", "--endpoint", url, "--workspace", f"{tmp}/ws", "--state-dir", f"{tmp}/state",
                        "--out", f"{tmp}/run", "--prompt", "read the readme again and again", "--quiet", "--no-guards",
                        "--max-turns", str(turns + 5), "--max-tool-calls", str(turns + 5)],
                       check=True, stdout=subprocess.DEVNULL)
    finally:
        process.kill()
    events = [json.loads(line) for line in open(f"{tmp}/run/transcript.jsonl")]
    first = next(e["t"] for e in events if e["event"] == "request")
    end = next(e["t"] for e in events if e["event"] == "end")
    tools = sum(e["duration_ms"] for e in events if e["event"] == "tool_result") / 1000
    return (end - first) / (turns + 1), (end - first - tools) / (turns + 1)


def anchor():
    process, url = mock()
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))
    messages = [{"role": "system", "content": "bench"}, {"role": "user", "content": "read the readme"}]
    tools = [{"type": "function", "function": {"name": "read_file", "description": "", "parameters": {"type": "object"}}}]
    started = time.perf_counter()
    try:
        for turn in range(1, turns + 2):
            body = json.dumps({"model": "bench-model", "messages": messages, "tools": tools, "stream": True,
                               "stream_options": {"include_usage": True}})
            connection.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode()
            assert response.status == 200, text
            if turn <= turns:
                call = {"id": f"call_m{turn}x0", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"README.md\"}"}}
                messages += [{"role": "assistant", "content": None, "tool_calls": [call]},
                             {"role": "tool", "tool_call_id": call["id"], "content": "1\t# bench\n" * 20}]
    finally:
        process.kill()
    return (time.perf_counter() - started) / (turns + 1)


per_turn, without_tools = toolhost_run()
bare = anchor()
print(f"turns: {turns + 1} (each with one read_file call but the last)")
print(f"toolhost run, per turn:               {per_turn * 1000:.2f} ms")
print(f"  of which the loop (tool time out):  {without_tools * 1000:.2f} ms   goal <= 5 ms: {'met' if without_tools <= 0.005 else 'NOT met'}")
print(f"bare HTTP client to the same mock:    {bare * 1000:.2f} ms per turn (the mock's own time and HTTP)")
print(f"ratio loop / bare HTTP:               {without_tools / bare:.2f}x")
print(f"loop minus the bare round trip:       {(without_tools - bare) * 1000:.2f} ms per turn")
subprocess.run(["rm", "-rf", tmp])
