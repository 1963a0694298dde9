"""toolhost where evaluations run, thin over the `toolhost` binary.

- `toolhost_eval.inspect_sandbox`: the Inspect sandbox provider `sandbox="toolhost"`.

The binary is `$TOOLHOST_BIN`, else `toolhost` on PATH, else the checkout's own build
(`.build/release`, then `.build/debug`) when the package is installed editable from it.
"""
