"""A Harbor trial in the toolhost environment: real Harbor (`harbor run`) runs the oracle on
fixtures/harbor/hello-world TRIALS times, and each trial's phases (environment setup, the agent,
the verifier) come from its result.json. Anchor, measured in the same run: the same trial's
commands (make the folders, write and run solve.sh, write and run test.sh, read the reward), each
in a fresh bubblewrap sandbox, which is what a trial costs when each step is one sandbox start.
Harbor's own local environments (Docker, Podman) have no daemon on this machine, so none is timed.
Usage: python3 bench/harbor_trial.py TOOLHOST [TRIALS]
"""
import datetime
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HARBOR = os.path.join(ROOT, ".venv-eval", "bin", "harbor")
TASK = os.path.join(ROOT, "fixtures", "harbor", "hello-world")


def seconds(phase):
    parse = lambda text: datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (parse(phase["finished_at"]) - parse(phase["started_at"])).total_seconds()


def bwrap_trial(root):
    """The trial's steps, each a fresh sandbox with the trial's folders bound at Harbor's paths."""
    for folder in ("app", "logs/verifier", "tests", "solution"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
    binds = []
    for folder in ("app", "logs", "tests", "solution"):
        binds += ["--bind", os.path.join(root, folder), "/" + folder]
    # A root of its own (as toolhost's): the host's top-level entries, read-only, and the mount points.
    root_entries = []
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if name in ("proc", "dev", "tmp", "app", "logs", "tests", "solution"):
            continue
        if os.path.islink(path):
            root_entries += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            root_entries += ["--ro-bind", path, path]
    sandbox = ["bwrap", "--unshare-all", "--tmpfs", "/", *root_entries, "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
               *binds, "--chdir", "/app", "bash", "-c"]
    steps = [
        "mkdir -p /logs/agent /logs/verifier /logs/artifacts",
        "cat > /solution/solve.sh", "bash /solution/solve.sh > /logs/agent/oracle.txt",
        "cat > /tests/test.sh", "rm -f /logs/verifier/reward.txt", "bash /tests/test.sh > /logs/verifier/test-stdout.txt",
        "cat /logs/verifier/reward.txt",
    ]
    inputs = {1: open(os.path.join(TASK, "solution", "solve.sh"), "rb").read(),
              3: open(os.path.join(TASK, "tests", "test.sh"), "rb").read()}
    for index, step in enumerate(steps):
        subprocess.run(sandbox + [step], input=inputs.get(index, b""), check=True, stdout=subprocess.DEVNULL)


def main():
    toolhost = os.path.abspath(sys.argv[1])
    trials = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    if not os.access(HARBOR, os.X_OK):
        sys.exit("bench harbor-trial: Harbor is not installed in .venv-eval; run scripts/setup.sh")
    with tempfile.TemporaryDirectory(prefix="toolhost-bench-harbor-") as scratch:
        environment = dict(os.environ, TOOLHOST_BIN=toolhost)
        start = time.perf_counter()
        subprocess.run([HARBOR, "run", "-p", TASK, "--agent", "oracle", "--env", "toolhost_eval.harbor:ToolhostEnvironment",
                        "-k", str(trials), "-n", "1", "-o", scratch + "/jobs", "-y", "-q"],
                       env=environment, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        job_seconds = time.perf_counter() - start
        phases = {"environment_setup": [], "agent_execution": [], "verifier": [], "trial": []}
        for path in glob.glob(scratch + "/jobs/*/*/result.json"):
            result = json.load(open(path))
            if ((result.get("verifier_result") or {}).get("rewards") or {}).get("reward") != 1.0:
                sys.exit(f"bench harbor-trial: a trial did not pass: {path}")
            for name in ("environment_setup", "agent_execution", "verifier"):
                phases[name].append(seconds(result[name]))
            phases["trial"].append(seconds(result))
        anchors = []
        for index in range(trials):
            started = time.perf_counter()
            bwrap_trial(f"{scratch}/bwrap-{index}")
            anchors.append(time.perf_counter() - started)
    print(f"{trials} oracle trials of hello-world in one harbor job: {job_seconds:.2f} s wall (Harbor's own start included)")
    for name, samples in phases.items():
        print(f"  toolhost environment {name:<18} median {statistics.median(samples) * 1000:7.1f} ms")
    steps = phases["environment_setup"] + phases["agent_execution"] + phases["verifier"]
    toolhost_trial = statistics.median(phases["environment_setup"]) + statistics.median(phases["agent_execution"]) + statistics.median(phases["verifier"])
    anchor = statistics.median(anchors)
    print(f"  anchor: the trial's 7 steps, each a fresh bwrap sandbox  median {anchor * 1000:7.1f} ms")
    print(f"toolhost environment (setup + agent + verifier): {toolhost_trial * 1000:.1f} ms = {toolhost_trial / anchor:.2f}x the bwrap anchor"
          f" ({len(steps)} phases timed)")


if __name__ == "__main__":
    main()
