#!/usr/bin/env bash
# The demo: a few tool calls against temporary copies of fixtures/repos/starter and
# fixtures/repos/blog, each one a separate `toolhost call` process: the shell keeps its cwd and
# exports, nothing leaves the workspace, and a broken build comes back with its fix.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/toolhost}
[ -x "$bin" ] || { echo "demo: $bin is not built; run 'make demo'" >&2; exit 1; }
bin=$(realpath "$bin")

work=$(mktemp -d /tmp/toolhost-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r fixtures/repos/starter "$work/ws"
ws="$work/ws"

step() {
  local tool=$1 args=$2
  printf '\n\033[1m$ toolhost call %s %s\033[0m\n' "$tool" "$args"
  "$bin" call "$tool" "$args" --workspace "$ws" --state-dir "$work/state" 2>/dev/null || true
}

echo "toolhost demo: workspace $ws"
step execute '{"command":"cd src/lib && export STAGE=demo && ls"}'
step execute '{"command":"pwd && echo STAGE=$STAGE"}'
step read_file '{"path":"src/lib/tags.ts","offset":7,"limit":4}'
step edit_file '{"path":"src/lib/tags.ts","old_string":"most used first","new_string":"the most used first"}'
step read_file '{"path":"src/lib/tag.ts"}'
step execute '{"command":"cd /etc"}'
step execute '{"command":"pwd"}'
step write_file '{"path":"../escape.txt","content":"nope"}'
step execute '{"command":"ls -A ~ /root; grep -E \"^(Seccomp|NoNewPrivs|CapEff):\" /proc/self/status; echo pwned >> /etc/hostname"}'
# The showdown's lost hour: an import one level short, rebuilt again and again.
cp -r fixtures/repos/blog "$work/blog"
rm -rf "$work/blog/dist"
sed -i 's#"../../../lib/posts"#"../../lib/posts"#' "$work/blog/src/app/admin/posts/page.ts"
ws="$work/blog"
step build '{}'
step edit_file '{"path":"src/app/admin/posts/page.ts","old_string":"\"../../lib/posts\"","new_string":"\"@/lib/posts\""}'
step build '{}'

printf '\nThe shell stayed in src/lib across separate processes, a missing file named its nearest\nneighbour, nothing resolved outside the workspace, the sandbox said which rule stopped a write,\nand the failed build named the file the import meant.\n'
