"""A local Ray cluster of two nodes for the showdown tests (ray.cluster_utils.Cluster): the head
with resource `alpha`, a second node with `beta`, one CPU each. Prints {"address", "nodes": {name:
node id}} once up, then takes commands on stdin: `kill NAME` removes that node at once (as a box
that dies), `replace NAME` kills it and adds a new node with the same resources (prints its id),
`stop` (or end of input) shuts the cluster down.
Usage: python Tests/Interop/ray_cluster.py
"""
import json
import sys

from ray.cluster_utils import Cluster

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"alpha": 1}})
nodes = {"alpha": cluster.head_node, "beta": cluster.add_node(num_cpus=1, resources={"beta": 1})}
cluster.wait_for_nodes()
print(json.dumps({"address": cluster.address, "nodes": {name: node.node_id for name, node in nodes.items()}}), flush=True)
for line in sys.stdin:
    command = line.split()
    if command[:1] in (["kill"], ["replace"]):
        cluster.remove_node(nodes[command[1]], allow_graceful=False)
        reply = {"killed": command[1]}
        if command[0] == "replace":
            nodes[command[1]] = cluster.add_node(num_cpus=1, resources={command[1]: 1})
            reply["replacement"] = nodes[command[1]].node_id
        print(json.dumps(reply), flush=True)
    elif command[:1] == ["stop"]:
        break
cluster.shutdown()
