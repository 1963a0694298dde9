"""toolhost where evaluations run, thin over the `toolhost` binary.

- `toolhost_eval.harbor`: the Harbor environment `ToolhostEnvironment` (trials in confined toolhost
  workspaces, no Docker) and agent `ToolhostAgent` (toolhost's own loop, ATIF trajectories).
- `toolhost_eval.inspect_sandbox`: the Inspect sandbox provider `sandbox="toolhost"`.

The binary is `$TOOLHOST_BIN`, else `toolhost` on PATH, else the checkout's own build
(the newer of `.build/release` and `.build/debug`) when the package is installed editable from it.
"""
