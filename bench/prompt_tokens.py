"""Prompt tokens the tag-manager scenario (make demo's second part) sends, with the compact tool
schemas, and with them and the condenser (both `toolhost run`'s defaults), against the full schemas
(tools.json) and no condensing as the anchor, in the same run. The mock endpoint records every request; each is counted as a server's chat template
would see it: the messages' text and one JSON line per tool. Tokens come from a llama-server's
/tokenize (TOKENIZER_URL, or the llama-server and model scripts/setup.sh caches, started here);
without one, bytes / 4 stand in and the output says so.
Usage: python3 bench/prompt_tokens.py TOOLHOST (or bench/run.sh prompt-tokens)
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tag_manager import ROOT, repo  # noqa: E402

CACHE = os.path.expanduser("~/.cache/toolhost")


def tokenizer():
    """A /tokenize counter, the server it started (or None), and its name."""
    url = os.environ.get("TOKENIZER_URL")
    server = None
    if not url:
        binary = glob.glob(os.path.join(CACHE, "llama-server-*", "llama-server"))
        model = os.path.join(CACHE, "models", "smollm2-135m-instruct-q4_1.gguf")
        if not binary or not os.path.exists(model):
            return (lambda text: len(text.encode()) // 4), None, "bytes / 4 (no llama-server here)"
        port = 18990
        server = subprocess.Popen([binary[0], "-m", model, "--port", str(port), "-c", "512", "-t", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except Exception:
                time.sleep(0.1)

    def count(text):
        request = urllib.request.Request(url + "/tokenize", data=json.dumps({"content": text}).encode(), headers={"Content-Type": "application/json"})
        return len(json.load(urllib.request.urlopen(request))["tokens"])
    return count, server, f"/tokenize of {url}" + (" (SmolLM2's tokenizer)" if server else "")


def text_of(message):
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    calls = "".join(json.dumps(call.get("function", call)) for call in message.get("tool_calls") or [])
    return f"<|{message['role']}|>\n{content}{calls}\n"


def scenario(toolhost, label, extra, tmp, count):
    work = os.path.join(tmp, label)
    os.makedirs(work)
    requests = os.path.join(work, "requests")
    os.makedirs(requests)
    repo(os.path.join(work, "blog"), os.path.join(work, "remote.git"))
    mock = subprocess.Popen([toolhost, "mock-endpoint", "--script", os.path.join(ROOT, "fixtures/endpoints/competent-tag-manager.yaml"),
                             "--port", "0", "--record", requests], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = mock.stdout.readline().strip()
        subprocess.run([toolhost, "run", "--endpoint", url, "--workspace", os.path.join(work, "blog"), "--task",
                        os.path.join(ROOT, "fixtures/tasks/tag-manager.md"), "--out", os.path.join(work, "run"),
                        "--state-dir", os.path.join(work, "state"), "--quiet"] + extra, check=True, stdout=subprocess.DEVNULL)
    finally:
        mock.kill()
        subprocess.run(["bash", "-c", "pkill -f 'node dist/server.js' || true"])
    outcome = json.load(open(os.path.join(work, "run", "summary.json")))["outcome"]
    total = schema_total = 0
    bodies = sorted(glob.glob(os.path.join(requests, "request-*.json")))
    for path in bodies:
        body = json.load(open(path))
        tools = "\n".join(json.dumps(tool, ensure_ascii=False) for tool in body.get("tools", []))
        schema_tokens = count(tools) if tools else 0
        total += schema_tokens + count("".join(text_of(m) for m in body["messages"]))
        schema_total += schema_tokens
    return len(bodies), total, schema_total, outcome


def main():
    toolhost = os.path.abspath(sys.argv[1])
    count, server, how = tokenizer()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            print(f"tokens: {how}")
            print(f"{'run':<28} {'requests':>8} {'prompt tokens':>14} {'of them schemas':>16}  outcome")
            # The anchor is run before compact schemas and the condenser; the last row is the default.
            runs = [("full schemas (anchor)", ["--schemas", "full", "--condense-at", "0"]), ("compact schemas", ["--condense-at", "0"]),
                    ("compact, condensed (default)", [])]
            rows = []
            for label, extra in runs:
                n, total, schema, outcome = scenario(toolhost, label.split()[0] + str(len(rows)), extra, tmp, count)
                rows.append(total)
                print(f"{label:<28} {n:>8} {total:>14} {schema:>10} ({100 * schema / max(1, total):.0f}%)  {outcome}")
            print("against the full schemas: " + ", ".join(f"{label} {total / max(1, rows[0]):.2f}x" for (label, _), total in zip(runs[1:], rows[1:])))
    finally:
        if server:
            server.kill()


if __name__ == "__main__":
    main()
