"""The tag-manager scenario (make demo's second part) with a release toolhost: its wall time, and
the bytes of every tool result against the raw output of the same commands run by hand on a second
copy of the workspace (cat for read_file, npm run build for build, git for the git tools, the shell
for execute; writes and edits print nothing). Screenshots are left out on both sides: the image is
the point of the call.
Usage: python3 bench/tag_manager.py TOOLHOST (or bench/run.sh tag-manager)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def repo(path, remote):
    shutil.copytree(os.path.join(ROOT, "fixtures/repos/blog"), path, symlinks=True, ignore=shutil.ignore_patterns("dist"))
    git = lambda *a, cwd=path: subprocess.run(["git", *a], cwd=cwd, check=True, capture_output=True)
    git("init", "-q", "-b", "main")
    git("config", "user.name", "bench")
    git("config", "user.email", "bench@localhost")
    git("add", "-A")
    git("commit", "-qm", "base")
    if not os.path.exists(remote):
        git("init", "-q", "--bare", "-b", "main", remote, cwd=os.path.dirname(remote))
    git("remote", "add", "origin", remote)
    git("push", "-q", "origin", "main")


def raw(call, work):
    """The bytes a shell would have shown for the same command."""
    name, args = call["name"], json.loads(call["arguments"])
    run = lambda command: subprocess.run(["bash", "-c", command], cwd=work, capture_output=True)
    if name == "read_file":
        return len(open(os.path.join(work, args["path"]), "rb").read())
    if name == "write_file":
        path = os.path.join(work, args["path"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write(args["content"])
        return 0
    if name == "edit_file":
        path = os.path.join(work, args["path"])
        text = open(path).read()
        open(path, "w").write(text.replace(args["old_string"], args["new_string"], 1))
        return 0
    if name == "build":
        done = run("npm run build 2>&1")
        return len(done.stdout)
    if name == "git_commit":
        done = run("git add -- " + " ".join(args.get("paths", ["."])) + " && git commit -m " + json.dumps(args["message"]) + " 2>&1")
        return len(done.stdout)
    if name == "git_push":
        done = run("git push origin HEAD:refs/heads/bench-raw 2>&1")
        return len(done.stdout)
    if name == "execute":
        if args.get("background"):
            return 0
        return len(run(args["command"] + " 2>&1").stdout)
    return 0


def main():
    toolhost = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        remote = os.path.join(tmp, "remote.git")
        repo(os.path.join(tmp, "blog"), remote)
        mock = subprocess.Popen([toolhost, "mock-endpoint", "--script", os.path.join(ROOT, "fixtures/endpoints/competent-tag-manager.yaml"),
                                 "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        url = mock.stdout.readline().strip()
        start = time.perf_counter()
        subprocess.run([toolhost, "run", "--endpoint", url, "--workspace", os.path.join(tmp, "blog"), "--task",
                        os.path.join(ROOT, "fixtures/tasks/tag-manager.md"), "--out", os.path.join(tmp, "run"),
                        "--state-dir", os.path.join(tmp, "state"), "--quiet"], check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        mock.kill()
        events = [json.loads(line) for line in open(os.path.join(tmp, "run", "transcript.jsonl"))]
        calls = {e["id"]: e for e in events if e["event"] == "tool_call"}
        work = os.path.join(tmp, "raw")
        repo(work, os.path.join(tmp, "raw-remote.git"))
        ours = theirs = 0
        print(f"{'tool':<12} {'result bytes':>12} {'raw bytes':>10}")
        for event in events:
            if event["event"] != "tool_result" or event["name"] == "screenshot":
                continue
            mine, shell = len(event["content"].encode()), raw(calls[event["id"]], work)
            ours, theirs = ours + mine, theirs + shell
            print(f"{event['name']:<12} {mine:>12} {shell:>10}")
        subprocess.run(["bash", "-c", "pkill -f 'node dist/server.js' || true"])
        print(f"total        {ours:>12} {theirs:>10}   ratio {ours / max(1, theirs):.2f}x   (goal <= 0.3x)")
        print(f"wall time of the run: {wall:.1f} s (model time: none, the mock answers at once)")


if __name__ == "__main__":
    main()
