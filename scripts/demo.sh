#!/usr/bin/env bash
# The demo, in two parts. First a few tool calls against temporary copies of fixtures/repos/starter
# and fixtures/repos/blog, each one a separate `toolhost call` process: the shell keeps its cwd and
# exports, nothing leaves the workspace, and a broken build comes back with its fix. Then the agent
# loop end to end: a scripted competent model (fixtures/endpoints/competent-tag-manager.yaml, served
# by `toolhost mock-endpoint`) does the tag-manager task (fixtures/tasks/tag-manager.md) on a copy
# of the blog with a bare repository as its remote. TOOLHOST_DEMO_DIR chooses the folder it works in.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/toolhost}
[ -x "$bin" ] || { echo "demo: $bin is not built; run 'make demo'" >&2; exit 1; }
bin=$(realpath "$bin")

work=${TOOLHOST_DEMO_DIR:-$(mktemp -d /tmp/toolhost-demo.XXXXXX)}
mkdir -p "$work"
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

# Part two: toolhost drives a (scripted) model through the whole task.
printf '\n\033[1mThe agent loop: the tag-manager task, end to end\033[0m\n'
blog="$work/tag-blog"
cp -r fixtures/repos/blog "$blog"
rm -rf "$blog/dist"
git -C "$blog" init -q -b main
git -C "$blog" config user.name "toolhost demo"
git -C "$blog" config user.email "demo@localhost"
git -C "$blog" add -A
git -C "$blog" commit -qm "The blog before the tag manager"
git init -q --bare -b main "$work/remote.git"
git -C "$blog" remote add origin "$work/remote.git"
git -C "$blog" push -q origin main

"$bin" mock-endpoint --script fixtures/endpoints/competent-tag-manager.yaml --port 0 >"$work/mock.url" 2>"$work/mock.log" &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$work/mock.url" ] && break; sleep 0.1; done
url=$(head -1 "$work/mock.url")
status=0
"$bin" run --endpoint "$url" --workspace "$blog" --task fixtures/tasks/tag-manager.md --out "$work/run" \
  --state-dir "$work/state" --quiet || status=$?
echo
"$bin" report "$work/run"
shot=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["screenshot"] or "")' "$work/run/summary.json")
printf '\nScreenshot: %s\nCommits on the remote'"'"'s agent/tag-manager:\n' "$shot"
git --git-dir "$work/remote.git" log --format='  %h %s' agent/tag-manager
printf '\nEverything is kept in %s (transcript: run/transcript.jsonl).\n' "$work"
exit $status
