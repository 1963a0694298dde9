"""Runs Inspect's own sandbox conformance checks (inspect_ai/util/_sandbox/self_check.py) against
sandbox="toolhost", each check in a fresh sample, and prints JSON: {"passed": [...], "failed":
{name: reason}}. Usage: TOOLHOST_BIN=... python inspect_self_check.py [CHECK...]
"""
import asyncio
import json
import sys

from inspect_ai.util._sandbox import self_check
from inspect_ai.util._sandbox.registry import registry_find_sandboxenv
from inspect_ai._util.entrypoints import ensure_entry_points


async def main(names):
    ensure_entry_points()  # what Inspect does: the toolhost_eval entry point registers "toolhost"
    provider = registry_find_sandboxenv("toolhost")
    results = {"passed": [], "failed": {}}
    for name in names or self_check.__all__:
        environments = await provider.sample_init("self-check", None, {})
        try:
            await getattr(self_check, name)(environments["default"])
            results["passed"].append(name)
        except BaseException as error:  # noqa: BLE001 - a check's failure is data here
            results["failed"][name] = f"{type(error).__name__}: {str(error)[:300]}"
        finally:
            await provider.sample_cleanup("self-check", None, environments, False)
    # The host side of a read: a symlink the sample made to a host file beside its workspace
    # (outside it) is followed inside the sandbox, where that file does not exist.
    environments = await provider.sample_init("self-check", None, {})
    sandbox = environments["default"]
    with open(sandbox.root + "/host-secret.txt", "w") as secret:
        secret.write("host secret")
    await sandbox.exec(["ln", "-s", sandbox.root + "/host-secret.txt", "leak"])
    try:
        results["symlink_read"] = (await sandbox.read_file("leak"))[:100]
    except FileNotFoundError as error:
        results["symlink_read"] = f"FileNotFoundError: {error}"
    await provider.sample_cleanup("self-check", None, environments, False)
    print(json.dumps(results, indent=1))


asyncio.run(main(sys.argv[1:]))
