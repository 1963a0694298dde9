"""The toolhost binary and one confined call through `toolhost sandbox`, shared by the doors."""
import asyncio
import os
import shutil

# Callers bound a call's time themselves; toolhost's own bound is the profile's when none is given,
# so give one that never cuts a call the caller let run.
UNBOUNDED_SECONDS = 7 * 24 * 3600
# Writes its standard input to the file "$1", making its folder: file writes run confined too.
WRITE_SCRIPT = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'


def toolhost_binary() -> str:
    """The toolhost binary: $TOOLHOST_BIN, else toolhost on PATH, else the newer of the release
    and debug builds of the checkout this package was installed from (editable): a stale release
    build must not hide what was just built."""
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    built = [os.path.join(repository, ".build", kind, "toolhost") for kind in ("release", "debug")]
    built = sorted((path for path in built if os.access(path, os.X_OK)), key=os.path.getmtime, reverse=True)
    found = os.environ.get("TOOLHOST_BIN") or shutil.which("toolhost") or next(iter(built), None)
    if not found:
        raise RuntimeError(
            "no toolhost binary found. Build it (swift build -c release) and set "
            "TOOLHOST_BIN=/path/to/toolhost, or put toolhost on PATH.")
    return found


class Confined:
    """Runs commands confined in one workspace: `toolhost sandbox` with a state folder, a profile,
    a session and `--mount`s of the caller's."""

    def __init__(self, workspace: str, state: str, profile: str = "default", session: str = "default",
                 mounts: list[str] | None = None) -> None:
        self.binary = toolhost_binary()
        self.workspace = workspace
        self.state = state
        self.profile = profile
        self.session = session
        self.mounts = list(mounts or [])

    def options(self) -> list[str]:
        """The options that name this workspace for any toolhost subcommand that runs tools."""
        options = ["--workspace", self.workspace, "--state-dir", self.state, "--profile", self.profile]
        for mount in self.mounts:
            options += ["--mount", mount]
        return options

    async def run(self, argv: list[str], input: bytes | None = None, timeout: int | None = None,
                  max_output: int = 1 << 20) -> tuple[int, bytes, bytes]:
        """Runs argv confined; returns (exit status, stdout, stderr), stdout cut after `max_output`
        bytes plus one (so the caller can tell whether it fit). Raises TimeoutError when toolhost
        killed it for the time."""
        command = [
            self.binary, "sandbox", *self.options(), "--session", self.session,
            "--timeout", str(timeout or UNBOUNDED_SECONDS), "--max-output", str(max_output + 1),
        ]
        if input is not None:
            command.append("--stdin")
        process = await asyncio.create_subprocess_exec(
            *command, "--", *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        stdout, stderr = await process.communicate(input)
        # toolhost kills the command and all it started, then says so and exits 124.
        if process.returncode == 124 and b"toolhost: timed out after" in stderr:
            raise TimeoutError(f"timed out after {timeout} seconds: {argv[0]}")
        return process.returncode, stdout, stderr
