"""The Ray driver of `toolhost showdown --ray ADDRESS`: connects to the cluster, then takes one JSON
line per sealed run on stdin ({"id", "argv", "resources", "folder"}), runs each as a Ray task on a
node that has its resources (`argv` is `toolhost showdown ... --only-run ID`, to which the task adds
`--out` and `--node`), unpacks the run's files into `folder`, and answers one line per run on
stdout ({"id", "ok", "node"} or {"id", "ok": false, "error"}). A run whose node dies under it is
sent again once (Ray places it on a live node with its resources); a run no live node can take
any more is cancelled and answered as failed, which the showdown counts as a harness error. Its
log goes to stderr.
"""
import argparse
import ctypes
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import ray

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # The run ends with the Ray worker that started it (a node killed mid-run leaves no toolhost
    # behind); SIGTERM lets toolhost stop what it started.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


# Retried here, not by Ray: Ray does not retry a task whose node's raylet died under it.
@ray.remote(max_retries=0, retry_exceptions=False)
def take_run(argv: list[str], run: str) -> dict:
    """Runs one sealed run on this node; returns its node id, exit status, and its files as a tar."""
    node = ray.get_runtime_context().get_node_id()
    with tempfile.TemporaryDirectory(prefix="toolhost-ray-") as scratch:
        done = subprocess.run(argv + ["--out", scratch, "--node", node], capture_output=True, text=True,
                              preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL)
        folder = os.path.join(scratch, run)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            if os.path.isdir(folder):
                for name in sorted(os.listdir(folder)):
                    tar.add(os.path.join(folder, name), arcname=name)
    return {"node": node, "status": done.returncode, "stderr": done.stderr[-3000:], "tar": archive.getvalue()}


def _live_resources() -> dict[str, float]:
    totals: dict[str, float] = {}
    for node in ray.nodes():
        if node.get("Alive"):
            for name, amount in node.get("Resources", {}).items():
                totals[name] = max(totals.get(name, 0), amount)
    return totals


def _alive_nodes() -> set[str]:
    return {node["NodeID"] for node in ray.nodes() if node.get("Alive")}


def _wait_until_marked_dead(alive_before: set[str], seconds: float = 60) -> None:
    """Waits until the cluster has marked a node of `alive_before` dead: a retry sent sooner can be
    leased to the dead node's raylet again (the cluster notices a death only after a while)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive_before <= _alive_nodes():
        time.sleep(0.5)


def _unplaceable(resources: dict[str, float]) -> list[str]:
    live = _live_resources()
    return [name for name, amount in resources.items() if live.get(name, 0) < amount]


class Driver:
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def reply(self, message: dict) -> None:
        with self.lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    def take(self, request: dict) -> None:
        run, resources = request["id"], request.get("resources") or {}
        alive = _alive_nodes()
        outcome = self.attempt(request, resources)
        if outcome.get("died"):
            print(f"toolhost ray: {run}: its node died; retrying it once elsewhere", file=sys.stderr, flush=True)
            _wait_until_marked_dead(alive)
            outcome = self.attempt(request, resources)
        outcome.pop("died", None)
        self.reply({"id": run, **outcome})

    def attempt(self, request: dict, resources: dict[str, float]) -> dict:
        """One try of a run: {"ok": True, "node"} with its files in place, or {"ok": False, "error"}
        ("died" set when its node died under it)."""
        run = request["id"]
        missing = _unplaceable(resources)
        if missing:
            return {"ok": False, "error": f"no live node of the cluster has the resources {missing} (ray start --resources gives them)"}
        ref = take_run.options(resources=resources or None).remote(request["argv"], run)
        while True:
            ready, _ = ray.wait([ref], timeout=2)
            if ready:
                break
            missing = _unplaceable(resources)
            if missing:
                # Its node died and no other has what the run needs: Ray would wait for one forever.
                time.sleep(3)  # one that is placed already may still report
                ready, _ = ray.wait([ref], timeout=0)
                if ready:
                    break
                ray.cancel(ref, force=True)
                return {"ok": False, "error": f"its node died and no live node has the resources {missing} to take it again"}
        try:
            result = ray.get(ref)
        except (ray.exceptions.NodeDiedError, ray.exceptions.LocalRayletDiedError, ray.exceptions.WorkerCrashedError) as error:
            return {"ok": False, "died": True, "error": f"the node running it died, twice ({type(error).__name__})"}
        except Exception as error:  # a cancelled task, a task that could not start
            return {"ok": False, "error": f"it failed on the cluster ({type(error).__name__}: {str(error).splitlines()[0][:300]})"}
        folder = request["folder"]
        os.makedirs(folder, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(result["tar"]), mode="r") as tar:
            tar.extractall(folder, filter="data")
        if not os.path.exists(os.path.join(folder, "summary.json")):
            # Killed by a signal before it could write a summary: the box went, not the run.
            return {"ok": False, "died": result["status"] < 0,
                    "error": f"toolhost exited {result['status']} on node {result['node']} without a summary: {result['stderr']}"}
        return {"ok": True, "node": result["node"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", required=True, help="the cluster's address, or auto")
    arguments = parser.parse_args()
    if arguments.address != "auto":
        # ray.init retries an address where nothing listens for minutes: say so at once instead.
        host, _, port = arguments.address.rpartition(":")
        try:
            socket.create_connection((host.removeprefix("ray://") or "127.0.0.1", int(port)), timeout=5).close()
        except (OSError, ValueError) as error:
            sys.exit(f"toolhost ray: nothing answers at {arguments.address} ({error}); start the cluster (ray start --head) or give its address")
    # On a machine that runs several nodes, which one the driver attaches to (its tasks die with
    # that node's raylet): $TOOLHOST_RAY_NODE_IP picks it by address.
    node_ip = os.environ.get("TOOLHOST_RAY_NODE_IP")
    ray.init(address=arguments.address, log_to_driver=False, logging_level="WARNING", **({"_node_ip_address": node_ip} if node_ip else {}))
    driver = Driver()
    driver.reply({"ready": True, "nodes": sum(1 for node in ray.nodes() if node.get("Alive"))})
    threads = []
    for line in sys.stdin:
        if line.strip():
            thread = threading.Thread(target=driver.take, args=(json.loads(line),), daemon=True)
            thread.start()
            threads.append(thread)
    for thread in threads:
        thread.join()
    ray.shutdown()


if __name__ == "__main__":
    main()
