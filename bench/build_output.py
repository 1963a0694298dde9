"""For each broken copy of the fixture blog: the bytes of the build tool's result against the bytes
of the raw build output (npm run build, as a shell tool on pipes shows it; and on a terminal, as hosts
that run commands in a pty show it: tsc then prints code frames and colours), and whether the fix is in
the result.
Usage: python3 bench/build_output.py TOOLHOST
"""
import os
import shutil
import subprocess
import sys
import tempfile

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "repos", "blog")

# name: (file, old, new, script, what the result must contain for the fix)
CASES = {
    "off-by-one import": ("src/app/admin/posts/page.ts", '"../../../lib/posts"', '"../../lib/posts"', "build",
                          "import it as '../../../lib/posts'"),
    "reversed stringify": ("src/lib/posts.ts", "stringify(post.body, data)", "stringify(data, post.body)", "build",
                           "stringify(content: string, data: object)"),
    "missing export": ("src/app/tags/page.ts", "import { getAllTags } from", "import { getAllTags, getTags } from", "build",
                       "exports: Post, getAllPosts, getAllTags"),
    "TSX type error": ("src/app/admin/TagTable.tsx", "<td>{row.count}</td>", "<td>{row.total}</td>", "build",
                       "src/app/admin/TagTable.tsx:14:40"),
    "esbuild syntax error": ("src/server.ts", 'import { createServer } from "http";',
                             'import "@/lib/bad";\nimport { createServer } from "http";', "bundle", "src/lib/bad.ts:1:24"),
}


def main():
    toolhost = sys.argv[1]
    print(f"{'case':<24} {'raw bytes':>10} {'on a tty':>9} {'result bytes':>13} {'ratio':>7} {'vs tty':>7}  fix in result")
    for name, (file, old, new, script, fix) in CASES.items():
        with tempfile.TemporaryDirectory() as tmp:
            work = os.path.join(tmp, "ws")
            shutil.copytree(FIXTURE, work, symlinks=True, ignore=shutil.ignore_patterns("dist"))
            path = os.path.join(work, file)
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write(text.replace(old, new))
            if script == "bundle":
                with open(os.path.join(work, "src/lib/bad.ts"), "w") as f:
                    f.write("export const broken = (;\n")
            done = subprocess.run(["npm", "run", script], cwd=work, capture_output=True)
            raw = done.stdout + done.stderr
            tty = len(subprocess.run(["script", "-qc", f"npm run {script}", "/dev/null"], cwd=work, capture_output=True).stdout) \
                if shutil.which("script") else 0
            result = subprocess.run(
                [toolhost, "call", "build", f'{{"script":"{script}"}}', "--workspace", work, "--state-dir",
                 os.path.join(tmp, "state"), "--profile", "build"], capture_output=True).stdout
            # The log path differs per run and is not part of what a model needs; count it anyway.
            vs_tty = f"{len(result) / tty:>6.2f}x" if tty else "    n/a"
            print(f"{name:<24} {len(raw):>10} {tty:>9} {len(result):>13} {len(result) / len(raw):>6.2f}x {vs_tty}  {fix in result.decode()}")


main()
