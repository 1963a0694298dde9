"""What checkpoints cost, over MCP stdio in a 10,000-file workspace beside an empty one: a call
that changes nothing (`execute true`: the checkpoints before and after it find the watched tree
unchanged) and a write_file (the checkpoint after it walks the tree), with a walk of the same tree
by `find -type f` and by `git status` as anchors; then an undo after `rm -rf src`.
Usage: python3 bench/checkpoints.py TOOLHOST [CALLS]
"""
import os
import subprocess
import sys
import tempfile
import time

from mcpbench import Server, report, time_spawns


def make_tree(root, files):
    for folder in range(files // 20):
        path = os.path.join(root, f"src/module{folder}")
        os.makedirs(path)
        for index in range(20):
            with open(os.path.join(path, f"file{index}.ts"), "w") as f:
                f.write(f"export const value{folder}_{index} = {index};\n" * 20)


def main():
    toolhost = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    files = 200 if calls < 5 else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        tree, empty = os.path.join(tmp, "tree"), os.path.join(tmp, "empty")
        os.makedirs(tree)
        os.makedirs(empty)
        make_tree(tree, files)
        subprocess.run(["git", "init", "-q", tree], check=True)
        subprocess.run(["git", "-C", tree, "add", "-A"], check=True)
        print(f"tree: {files} files")
        write = {"name": "write_file", "arguments": {"path": "notes.txt", "content": "a note\n"}}
        nothing = {"name": "execute", "arguments": {"command": "true"}}
        big = Server(toolhost, "serve", "--workspace", tree, "--state-dir", os.path.join(tmp, "state"))
        small = Server(toolhost, "serve", "--workspace", empty, "--state-dir", os.path.join(tmp, "state2"))
        for server in (big, small):
            server.request("tools/call", write)  # the first checkpoint reads every file once
            server.request("tools/call", nothing)
        unchanged = report(f"execute true, {files}-file tree", big.time_calls("tools/call", nothing, calls)) \
            - report("execute true, empty workspace", small.time_calls("tools/call", nothing, calls))
        changed = report(f"write_file, {files}-file tree", big.time_calls("tools/call", write, calls)) \
            - report("write_file, empty workspace", small.time_calls("tools/call", write, calls))
        print(f"checkpoints of an unchanged tree (before and after a call): {unchanged:7.3f} ms (goal <= 2 ms)")
        print(f"checkpoints around a call that changed a file: {changed:7.3f} ms (goal <= 20 ms)")
        walk = report("anchor: find -type f", time_spawns(["find", tree, "-type", "f"], calls, quiet=True))
        status = report("anchor: git status --porcelain", time_spawns(["git", "-C", tree, "status", "--porcelain"], calls, quiet=True))
        print(f"ratio unchanged / find: {unchanged / walk:5.2f}x, / git status: {unchanged / status:5.2f}x; "
              f"after a change / find: {changed / walk:5.2f}x, / git status: {changed / status:5.2f}x")
        big.request("tools/call", {"name": "execute", "arguments": {"command": "rm -rf src"}})
        start = time.perf_counter()
        big.request("tools/call", {"name": "undo", "arguments": {}})
        undo = (time.perf_counter() - start) * 1000
        restored = sum(len(names) for _, _, names in os.walk(os.path.join(tree, "src")))
        print(f"undo restored {restored} of {files} files in {undo:.1f} ms")
        if restored != files:
            raise SystemExit(f"undo restored {restored} files, not {files}")
        big.close()
        small.close()


main()
