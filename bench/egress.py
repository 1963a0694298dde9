"""The egress proxy's cost: curl in the sandbox through the proxy (profile network: allowlist)
beside the same curl straight to the server (the network profile, the host's network), both run
by `toolhost sandbox` in the same run, against one Python server on 127.0.0.2.

Per request: the median of REQUESTS small GETs (each a new connection, as http.server closes it).
Throughput: a 64 MB download, best of three. Usage: egress.py TOOLHOST [REQUESTS]
"""
import json, os, statistics, subprocess, sys, tempfile, threading
import http.server

bin, requests = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
smoke = requests < 10
tmp = tempfile.mkdtemp(prefix="toolhost-bench-egress-")
os.makedirs(f"{tmp}/ws")
os.makedirs(f"{tmp}/files")
open(f"{tmp}/files/small.txt", "w").write("x" * 100)
size_mb = 4 if smoke else 64
with open(f"{tmp}/files/big.bin", "wb") as f:
    f.write(os.urandom(1 << 20) * size_mb)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **k):
        super().__init__(*a, directory=f"{tmp}/files", **k)

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
base = f"http://127.0.0.2:{server.server_address[1]}"

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
profile = json.load(open(f"{root}/sandbox-profiles/network.json"))
profile["network"] = "allowlist"
profile["requires"] = ["mount_namespace", "pid_namespace", "network_namespace", "seccomp"]
profile["egress"] = {"allow": ["127.0.0.2"]}
json.dump(profile, open(f"{tmp}/allowlist.json", "w"))

script = f"""
for i in $(seq {requests}); do curl -s -o /dev/null -w '%{{time_total}}\\n' {base}/small.txt; done
for i in 1 2 3; do curl -s -o /dev/null -w 'speed %{{speed_download}}\\n' {base}/big.bin; done
"""


def measure(profile_name):
    ran = subprocess.run([bin, "sandbox", "--profile", profile_name, "--workspace", f"{tmp}/ws", "--state-dir", f"{tmp}/state",
                          "--timeout", "600", "--", "sh", "-c", script], capture_output=True, text=True)
    if ran.returncode != 0:
        sys.exit(f"bench egress: toolhost sandbox --profile {profile_name} failed: {ran.stderr[-2000:]}")
    times = [float(x) * 1000 for x in ran.stdout.splitlines() if not x.startswith("speed")]
    speeds = [float(x.split()[1]) / (1 << 20) for x in ran.stdout.splitlines() if x.startswith("speed")]
    if len(times) != requests or len(speeds) != 3:
        sys.exit(f"bench egress: unexpected output from --profile {profile_name}: {ran.stdout[:500]}")
    return statistics.median(times), max(speeds)


proxied = measure(f"{tmp}/allowlist.json")
direct = measure("network")
print(f"requests: {requests} small GETs, a {size_mb} MB download (best of 3)")
print(f"per request, through the proxy:   {proxied[0]:.2f} ms (median)")
print(f"per request, direct:              {direct[0]:.2f} ms (median)")
print(f"added by the proxy:               {proxied[0] - direct[0]:.2f} ms per request ({proxied[0] / direct[0]:.2f}x)")
print(f"throughput through the proxy:     {proxied[1]:.0f} MB/s")
print(f"throughput direct:                {direct[1]:.0f} MB/s ({proxied[1] / direct[1]:.2f}x)")
server.shutdown()
