"""A showdown of REPEATS runs per contestant for two scripted contestants (hello-file, each turn
answered after DELAY ms, as a model's would be), run on a local Ray cluster of two nodes (one
contestant's resource on each, one CPU each: Tests/Interop/ray_cluster.py without its spare node) beside the same
showdown run locally (contestants one after another, as the config's parallel: 1 says): wall time
of each, the same config.
Usage: python3 bench/ray_showdown.py TOOLHOST [REPEATS] [DELAY_MS]
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(ROOT, ".venv-eval", "bin", "python")


def delayed_script(delay_ms: int) -> str:
    """fixtures/endpoints/competent-hello.yaml with every turn answered after delay_ms."""
    text = open(os.path.join(ROOT, "fixtures", "endpoints", "competent-hello.yaml")).read()
    return text.replace("    reply:", f"    delay_ms: {delay_ms}\n    reply:")


def start_mock(toolhost: str, script: str) -> tuple[subprocess.Popen, str]:
    mock = subprocess.Popen([toolhost, "mock-endpoint", "--script", script, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return mock, mock.stdout.readline().strip()


def showdown(toolhost: str, config: str, out: str, state: str, extra: list[str], environment=None) -> float:
    start = time.perf_counter()
    subprocess.run([toolhost, "showdown", "--config", config, "--out", out, "--state-dir", state, *extra],
                   check=True, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    toolhost = os.path.abspath(sys.argv[1])
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    delay = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    if not os.access(PYTHON, os.X_OK):
        sys.exit("bench ray-showdown: .venv-eval is missing; run scripts/setup.sh")
    with tempfile.TemporaryDirectory(prefix="toolhost-bench-ray-") as scratch:
        repo = os.path.join(scratch, "repo")
        os.makedirs(repo)
        open(os.path.join(repo, "README.md"), "w").write("# repo\n")
        for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "base"]):
            subprocess.run(["git", *command], cwd=repo, check=True)
        script = os.path.join(scratch, "delayed.yaml")
        open(script, "w").write(delayed_script(delay))
        mocks = [start_mock(toolhost, script) for _ in range(2)]
        config = os.path.join(scratch, "showdown.yaml")
        open(config, "w").write(
            f"task: {ROOT}/fixtures/tasks/hello-file.md\nworkspace: repo\nrepeats: {repeats}\nendpoints:\n"
            f"  - {{label: one, url: \"{mocks[0][1]}\", ray_resources: {{alpha: 1}}}}\n"
            f"  - {{label: two, url: \"{mocks[1][1]}\", ray_resources: {{beta: 1}}}}\n")
        cluster = subprocess.Popen([PYTHON, os.path.join(ROOT, "Tests", "Interop", "ray_cluster.py")],
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            started = time.perf_counter()
            up = json.loads(cluster.stdout.readline())
            address = up["address"]
            # The helper's cluster has a spare beta node for the tests; two nodes here.
            cluster.stdin.write("kill beta-2\n")
            cluster.stdin.flush()
            cluster.stdout.readline()
            cluster_seconds = time.perf_counter() - started
            state = os.path.join(scratch, "state")
            local = showdown(toolhost, config, os.path.join(scratch, "local"), state, [])
            on_ray = showdown(toolhost, config, os.path.join(scratch, "ray"), state, ["--ray", address],
                              dict(os.environ, TOOLHOST_RAY_NODE_IP=up["head_ip"]))
            results = json.load(open(os.path.join(scratch, "ray", "results.json")))
            nodes = {label: sorted({run["summary"].get("node", "")[:8] for run in results if run["label"] == label}) for label in ("one", "two")}
        finally:
            cluster.stdin.write("stop\n")
            cluster.stdin.flush()
            cluster.wait()
            for mock, _ in mocks:
                mock.kill()
    runs = 2 * repeats
    print(f"showdown of {runs} runs (2 contestants x {repeats}, each turn answered after {delay} ms), same config:")
    print(f"  local (contestants one after another)        {local:7.2f} s")
    print(f"  Ray, two nodes (one contestant's resource each) {on_ray:7.2f} s = {on_ray / local:.2f}x local"
          f"  (cluster start {cluster_seconds:.1f} s, not counted; nodes per contestant: {nodes})")


if __name__ == "__main__":
    main()
