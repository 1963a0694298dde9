"""A local Ray cluster of three nodes for the showdown tests (ray.cluster_utils.Cluster): the head
with resource `alpha`, and `beta-1` and `beta-2` with resource `beta`, one CPU each, the two on
addresses of their own (127.0.0.N, as boxes of their own: a driver started here attaches to the
head's raylet when TOOLHOST_RAY_NODE_IP names the head's address). Prints {"address", "head_ip",
"nodes": {name: node id}} once up, then takes commands on stdin:
`kill NAME` or `kill-node NODE_ID` removes that node at once (as a box that dies), `stop` (or end
of input) shuts the cluster down.
Usage: python Tests/Interop/ray_cluster.py
"""
import json
import sys

from ray.cluster_utils import Cluster

# No dashboard: two cores run the rest of the suite beside the cluster.
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"alpha": 1}, "include_dashboard": False})
nodes = {"alpha": cluster.head_node}
for index, name in enumerate(("beta-1", "beta-2")):
    nodes[name] = cluster.add_node(num_cpus=1, resources={"beta": 1}, node_ip_address=f"127.0.0.{index + 2}")
cluster.wait_for_nodes()
print(json.dumps({
    "address": cluster.address, "head_ip": cluster.head_node.node_ip_address,
    "nodes": {name: node.node_id for name, node in nodes.items()},
}), flush=True)
for line in sys.stdin:
    command = line.split()
    if command[:1] == ["kill"] or command[:1] == ["kill-node"]:
        name = command[1] if command[0] == "kill" else next(name for name, node in nodes.items() if node.node_id == command[1])
        cluster.remove_node(nodes.pop(name), allow_graceful=False)
        print(json.dumps({"killed": name}), flush=True)
    elif command[:1] == ["stop"]:
        break
cluster.shutdown()
