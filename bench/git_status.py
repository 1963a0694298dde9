"""git_status per call through MCP stdio: toolhost (libgit2, in-process, with an inotify watcher)
against the reference MCP git server (mcp-server-git from PyPI, in .venv), on the same repository
of 1,000 files with a few changes, in one run; once with nothing changing between calls, once with
a file changed before every call (the watcher names it, and status looks at it alone), and once
with the .gitignore changed before every call (which takes a whole status).
Usage: python3 bench/git_status.py TOOLHOST MCP_SERVER_GIT [CALLS]
"""
import os
import subprocess
import sys
import tempfile

from mcpbench import Server, report


def make_repository(path):
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@b")
    subprocess.run(["git", "init", "-q", "-b", "main", path], check=True)
    for folder in range(20):
        os.makedirs(os.path.join(path, f"src/mod{folder}"))
        for index in range(50):
            with open(os.path.join(path, f"src/mod{folder}/file{index}.ts"), "w") as f:
                f.write(f"export const value{index} = {index};\n" * 20)
    subprocess.run(["git", "add", "."], cwd=path, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=path, check=True, env=env)
    for index in range(5):
        with open(os.path.join(path, f"src/mod{index}/file0.ts"), "a") as f:
            f.write("// changed\n")
    with open(os.path.join(path, "new.ts"), "w") as f:
        f.write("export {};\n")


def main():
    toolhost, reference = sys.argv[1], sys.argv[2]
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    with tempfile.TemporaryDirectory() as tmp:
        repository = os.path.join(tmp, "repo")
        make_repository(repository)
        ours = Server(toolhost, "serve", "--workspace", repository, "--state-dir", os.path.join(tmp, "state"))
        mine = report("toolhost git_status (1,000 files)", ours.time_calls(
            "tools/call", {"name": "git_status", "arguments": {}}, calls))
        touched = os.path.join(repository, "src/mod7/file7.ts")

        def touch():
            with open(touched, "a") as f:
                f.write("//\n")

        rescan = report("toolhost git_status, a file changed before each", ours.time_calls(
            "tools/call", {"name": "git_status", "arguments": {}}, calls, before=touch))
        ignore = os.path.join(repository, ".gitignore")

        def touch_ignore(flip=[False]):
            flip[0] = not flip[0]
            with open(ignore, "w") as f:
                f.write("*.log\n" if flip[0] else "*.tmp\n")

        whole = report("toolhost git_status, .gitignore changed before each", ours.time_calls(
            "tools/call", {"name": "git_status", "arguments": {}}, calls, before=touch_ignore))
        ours.close()
        theirs = Server(reference, "--repository", repository)
        anchor = report("anchor: mcp-server-git git_status", theirs.time_calls(
            "tools/call", {"name": "git_status", "arguments": {"repo_path": repository}}, calls))
        theirs.close()
    print(f"ratio toolhost / mcp-server-git: {mine / anchor:5.2f}x  (nothing changed between calls: the watcher skips the scan)")
    print(f"ratio toolhost / mcp-server-git: {rescan / anchor:5.2f}x  (a file changed before every call: a status of that file)")
    print(f"ratio toolhost / mcp-server-git: {whole / anchor:5.2f}x  (.gitignore changed before every call: a whole status)")


main()
