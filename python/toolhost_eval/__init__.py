"""toolhost where evaluations run, thin over the `toolhost` binary.

- `toolhost_eval.inspect_sandbox`: the Inspect sandbox provider `sandbox="toolhost"`.

The binary is `$TOOLHOST_BIN`, else `toolhost` on PATH.
"""
