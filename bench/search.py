"""The grep tool over MCP stdio against grep -rn and (when installed) rg on the same tree, in one
run: Debian's node typings and npm (real JavaScript and TypeScript, 40 MB once the files over the
tool's 8 MB limit are left out) plus 10,000 generated TypeScript files. Also the bytes a model reads: the tool's first page beside raw grep -rn output.
Usage: python3 bench/search.py TOOLHOST [CALLS]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

from mcpbench import Server, report

SEARCHES = [
    ("literal", "createProgram", []),
    ("regex", r"function \w+Options\(", ["-E", r"function [A-Za-z0-9_]+Options\("]),
]


def make_tree(root, generated):
    for source in ["/usr/share/nodejs", "/usr/lib/node_modules"]:
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(root, os.path.basename(source)), symlinks=True)
    # The tool skips files over 8 MB (bundles); remove them so that both sides read the same bytes.
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.islink(path) and os.path.getsize(path) > 8 << 20:
                os.remove(path)
    for folder in range(generated // 20):
        path = os.path.join(root, f"src/module{folder}")
        os.makedirs(path)
        for index in range(20):
            with open(os.path.join(path, f"file{index}.ts"), "w") as f:
                f.write(f"import {{ helper{index} }} from './helper';\n")
                f.write("".join(f"export function value{index}_{line}(input: string): string {{ return helper{index}(input); }}\n" for line in range(40)))


def time_command(command, calls):
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - start)
    return samples


def main():
    toolhost = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    smoke = calls < 5
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        os.mkdir(tree)
        make_tree(tree, 200 if smoke else 10_000)
        files = sum(len(names) for _, _, names in os.walk(tree))
        print(f"tree: {files} files")
        server = Server(toolhost, "serve", "--workspace", tree, "--state-dir", os.path.join(tmp, "state"))
        rg = shutil.which("rg")
        for kind, pattern, grep_flags in SEARCHES:
            arguments = {"name": "grep", "arguments": {"pattern": pattern}}
            mine = report(f"toolhost grep ({kind})", server.time_calls("tools/call", arguments, calls))
            raw = ["grep", "-rn"] + (grep_flags or ["-F", pattern]) + ["."]
            anchor = report(f"anchor: grep -rn ({kind})", time_command(["sh", "-c", f"cd {tree} && exec \"$@\"", "sh"] + raw, calls))
            print(f"ratio toolhost / grep -rn: {mine / anchor:5.2f}x")
            if rg:
                fast = report(f"anchor: rg -n ({kind})", time_command([rg, "-n", pattern, tree], calls))
                print(f"ratio toolhost / rg: {mine / fast:5.2f}x")
            result = server.request("tools/call", arguments)["result"]
            text = result["content"][0]["text"]
            output = subprocess.run(raw, cwd=tree, capture_output=True).stdout
            facts = result.get("structuredContent", {})
            lines = output.count(b"\n")
            print(f"bytes ({kind}): toolhost first page {len(text.encode())} ({facts.get('returned')} of {facts.get('matches')} lines)"
                  f" against grep -rn {len(output)} ({lines} lines): {len(text.encode()) / max(1, len(output)):5.3f}x")
        server.close()


main()
