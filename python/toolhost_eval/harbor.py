"""toolhost in Harbor: an environment whose trials run confined in toolhost sessions on this
machine, with no Docker, and an agent that is toolhost's own loop.

    harbor run -p TASK --agent toolhost_eval.harbor:ToolhostAgent \\
        --env toolhost_eval.harbor:ToolhostEnvironment --ak endpoint=localhost:8080

`ToolhostEnvironment` gives each trial a workspace whose folders commands see at the paths tasks
name (`/app` or the Dockerfile's WORKDIR, `/logs`, `/tests`, `/solution`, a home at `/root` that
lasts between commands, and any other top-level folder this machine's / lacks that the trial
uploads to) through `toolhost sandbox --mount`. It
reads the task's Dockerfile instead of building it: WORKDIR, ENV and COPY are applied, apt-get
installs are checked against this machine's packages (a task needing one it lacks is refused
before the trial, naming it), and the other RUN steps run confined at start. Files move in and
out through the sandbox (tar over a pipe), never by a host open of a path a command could have
turned into a symlink.

`ToolhostAgent` runs `toolhost run` on the instruction against `--ak endpoint=URL`, with the
workdir's folder (/app) as its workspace, shown at the same path, and leaves toolhost's transcript.jsonl,
summary.json and trajectory.json (ATIF v1.4) in the trial's agent folder.

Options: `--ek profile=NAME` (the sandbox profile; default: "default", or "network" for a task
whose network_mode is public); `--ak endpoint=URL`, `--ak constrain=true`, `--ak profile=NAME`,
`--ak max_turns=N`, `--ak api=openai|anthropic`.
"""
import io
import json
import os
import re
import shlex
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from harbor.agents.base import BaseAgent
from harbor.environments.base import BaseEnvironment, ExecResult, SandboxBuildFailedError
from harbor.environments.capabilities import EnvironmentCapabilities
from harbor.models.agent.context import AgentContext
from harbor.models.task.config import NetworkMode

from toolhost_eval._toolhost import WRITE_SCRIPT, Confined, toolhost_binary

# The folders every trial has, at the paths Harbor uses (EnvironmentPaths), and a home that lasts
# from one command to the next as a container's does (/tmp does not: each command gets its own).
STANDARD_FOLDERS = ("logs", "logs/agent", "logs/verifier", "logs/artifacts", "tests", "solution", "home")
STANDARD_MOUNTS = ("logs:/logs", "tests:/tests", "solution:/solution", "home:/root")
# Downloads are tars of logs and outputs: bounded, but far above what a trial writes.
DOWNLOAD_LIMIT = 1 << 31
APT_HOUSEKEEPING = re.compile(r"^(apt(-get)?\s+(update|clean|autoclean|autoremove)\b|rm\s+-rf\s+/var/lib/apt/lists)")
APT_INSTALL = re.compile(r"^(DEBIAN_FRONTEND=\S+\s+)?apt(-get)?\s+install\b(.*)$", re.S)


@dataclass
class DockerfilePlan:
    """What a task's Dockerfile asks for, as this environment carries it out."""

    workdir: str = "/app"
    env: dict[str, str] = field(default_factory=dict)
    # (source in environment/, absolute target; ending in "/" when the source goes into that folder)
    copies: list[tuple[str, str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        logical.append(current)
        current = ""
    if current:
        logical.append(current)
    result = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _shell_form(arguments: str) -> str:
    """A RUN's command as a shell string (the exec form `["a", "b"]` quoted)."""
    if arguments.startswith("["):
        try:
            return shlex.join(json.loads(arguments))
        except ValueError:
            pass
    return arguments


def plan_dockerfile(text: str) -> DockerfilePlan:
    """Reads a Dockerfile into what this machine does instead of building it."""
    plan = DockerfilePlan()
    for keyword, arguments in _instructions(text):
        if keyword == "WORKDIR":
            plan.workdir = str(PurePosixPath(plan.workdir) / arguments)
        elif keyword == "ENV":
            parts = shlex.split(arguments)
            if parts and "=" not in parts[0]:
                plan.env[parts[0]] = " ".join(parts[1:])
            else:
                plan.env.update(part.split("=", 1) for part in parts if "=" in part)
        elif keyword in ("COPY", "ADD"):
            parts = [part for part in shlex.split(arguments) if not part.startswith("--chown") and not part.startswith("--chmod")]
            if any(part.startswith("--") for part in parts) or len(parts) < 2 or re.match(r"^[a-z]+://", parts[0]):
                plan.refusals.append(f"{keyword} {arguments} (only local files of environment/ can be copied)")
                continue
            destination, sources = parts[-1], parts[:-1]
            target = str(PurePosixPath(plan.workdir) / destination)
            # As Docker reads it: a destination ending in "/", ".", or taking several sources is a folder.
            into_folder = destination.endswith("/") or destination in (".", "./") or len(sources) > 1
            plan.copies += [(source, target + "/" if into_folder else target) for source in sources]
        elif keyword == "RUN":
            kept = []
            for step in re.split(r"\s*&&\s*", _shell_form(arguments)):
                install = APT_INSTALL.match(step)
                if install:
                    plan.packages += [word.split("=")[0] for word in install.group(3).split() if not word.startswith("-")]
                elif step and not APT_HOUSEKEEPING.match(step):
                    kept.append(step)
            if kept:
                plan.runs.append(" && ".join(kept))
        elif keyword == "USER" and arguments not in ("root", "0"):
            plan.refusals.append(f"USER {arguments} (commands run as the sandbox's root, which holds no capability)")
    return plan


def missing_packages(packages: list[str]) -> list[str]:
    """The Debian packages of `packages` this machine does not have installed."""
    missing = []
    for package in packages:
        status = os.popen(f"dpkg-query -W -f='${{Status}}' {shlex.quote(package)} 2>/dev/null").read()
        if "install ok installed" not in status:
            missing.append(package)
    return missing


class ToolhostEnvironment(BaseEnvironment):
    """A trial in a confined toolhost workspace on this machine (no Docker)."""

    def __init__(self, *args, profile: str | None = None, **kwargs) -> None:
        self._profile_option = profile
        self._plan = DockerfilePlan()
        self._root: str | None = None
        self._confined: Confined | None = None
        super().__init__(*args, **kwargs)

    @staticmethod
    def type() -> str:
        return "toolhost"

    @property
    def capabilities(self) -> EnvironmentCapabilities:
        return EnvironmentCapabilities(disable_internet=True)

    @property
    def profile(self) -> str:
        if self._profile_option:
            return self._profile_option
        return "network" if self._network_policy.network_mode == NetworkMode.PUBLIC else "default"

    def _validate_definition(self) -> None:
        # What the task asks for is judged in start(), so that one task this machine cannot run
        # fails its own trial (before the agent), not the whole job.
        dockerfile = self.environment_dir / "Dockerfile"
        if dockerfile.exists():
            self._plan = plan_dockerfile(dockerfile.read_text())
        if self.task_env_config.workdir:
            self._plan.workdir = self.task_env_config.workdir
        self._persistent_env = {**self._plan.env, **self._persistent_env}
        toolhost_binary()

    def _refusals(self) -> list[str]:
        """What the task needs that this machine's userland does not give, each with what to do."""
        problems = list(self._plan.refusals)
        if (self.environment_dir / "docker-compose.yaml").exists() or self.extra_docker_compose_paths:
            problems.append("Compose services (docker-compose.yaml): the toolhost environment is one confined workspace")
        missing = missing_packages(self._plan.packages)
        if missing:
            problems.append(
                f"the Debian packages {', '.join(missing)} (apt-get install them on this machine: the toolhost "
                "environment runs tasks on its userland instead of building the image)")
        problems += [
            f"COPY {source}: no such file in {self.environment_dir}"
            for source, _ in self._plan.copies if not (self.environment_dir / source).exists()
        ]
        return problems

    # -- layout ---------------------------------------------------------------------------------

    @property
    def workspace(self) -> str:
        """The trial's workspace on the host (its folders are what commands see at /app, /logs ...)."""
        if self._root is None:
            raise RuntimeError("the toolhost environment is not started")
        return os.path.join(self._root, "workspace")

    @property
    def workdir(self) -> str:
        """Where the task's commands start (the Dockerfile's WORKDIR, else /app)."""
        return self._plan.workdir

    @property
    def confined(self) -> Confined:
        if self._confined is None:
            raise RuntimeError("the toolhost environment is not started")
        return self._confined

    def _top_level(self, path: str) -> str:
        parts = PurePosixPath(path).parts
        if len(parts) < 2 or parts[0] != "/":
            raise ValueError(f"{path}: the toolhost environment takes absolute paths")
        return parts[1]

    def _mount_for(self, path: str) -> tuple[str, str] | None:
        """The mount (workspace folder, target) that holds `path`, the deepest one; or None."""
        holding = [
            (folder, target) for folder, target in (mount.split(":", 1) for mount in self.confined.mounts)
            if path == target or path.startswith(target.rstrip("/") + "/")
        ]
        return max(holding, key=lambda mount: len(mount[1]), default=None)

    def _ensure_shown(self, path: str) -> None:
        """Makes `path` lie in a mount of the trial's workspace: its top-level folder when this
        machine's / lacks it; refuses a path in a folder of the host's."""
        if self._mount_for(path):
            return
        top = self._top_level(path)
        if os.path.lexists("/" + top):
            targets = [mount.split(":", 1)[1] for mount in self.confined.mounts]
            raise PermissionError(
                f"{path}: /{top} is this machine's own, which the sandbox shows read-only; the toolhost "
                f"environment can write only inside its workspace's folders ({', '.join(targets)})")
        self._add_mount(top, "/" + top)

    def _add_mount(self, folder: str, target: str) -> None:
        # Made by name in a folder only toolhost's sandbox writes; a symlink planted there makes
        # mkdir fail and toolhost refuse the mount, never a write outside.
        os.makedirs(os.path.join(self.workspace, folder), exist_ok=True)
        self.confined.mounts.append(f"{folder}:{target}")

    @property
    def workdir_mount(self) -> tuple[str, str]:
        """The workspace folder (host path) the workdir lies in, and where commands see it."""
        folder, target = self._mount_for(self.workdir)
        return os.path.join(self.workspace, folder), target

    async def start(self, force_build: bool) -> None:
        problems = self._refusals()
        if problems:
            raise SandboxBuildFailedError(
                f"task {self.environment_name} needs what the toolhost environment cannot give on this machine: "
                + "; ".join(problems) + ". Run it with an environment that builds the image (--env docker).")
        self._root = tempfile.mkdtemp(prefix=f"toolhost-harbor-{self.environment_name[:40]}-")
        workspace = self.workspace
        for folder in STANDARD_FOLDERS:
            os.makedirs(os.path.join(workspace, folder), exist_ok=True)
        self._confined = Confined(workspace, os.path.join(self._root, "state"), self.profile, session="harbor")
        self._confined.mounts += STANDARD_MOUNTS
        if os.path.lexists("/" + self._top_level(self.workdir)):
            # A workdir in a folder of the host's (/srv/app, /home/user): the workdir itself is
            # mounted, and toolhost gives it a place in that folder's view.
            self._add_mount("workdir", self.workdir)
        else:
            self._ensure_shown(self.workdir)
        result = await self.exec(f"mkdir -p {shlex.quote(self._plan.workdir)}", user="root")
        if result.return_code != 0:
            raise SandboxBuildFailedError(f"cannot make the workdir {self._plan.workdir}: {result.stderr}")
        for source, target in self._plan.copies:
            path = self.environment_dir / source
            if path.is_dir():
                # Docker copies a folder's contents, not the folder.
                await self.upload_dir(path, target.rstrip("/") or "/")
            else:
                await self.upload_file(path, target + path.name if target.endswith("/") else target)
        for command in self._plan.runs:
            result = await self.exec(command, user="root", timeout_sec=int(self.task_env_config.build_timeout_sec))
            if result.return_code != 0:
                output = ((result.stdout or "") + (result.stderr or ""))[-2000:]
                raise SandboxBuildFailedError(
                    f"the Dockerfile's RUN {command!r} failed here (exit {result.return_code}), confined on this "
                    f"machine's userland:\n{output}")
        await self._upload_environment_dir_after_start()

    async def stop(self, delete: bool) -> None:
        if self._root and delete:
            # rmtree does not follow symlinks a command left behind.
            shutil.rmtree(self._root, ignore_errors=True)

    # -- commands and files ---------------------------------------------------------------------

    async def exec(self, command: str, cwd: str | None = None, env: dict[str, str] | None = None,
                   timeout_sec: int | None = None, user: str | int | None = None) -> ExecResult:
        user = self._resolve_user(user)
        if user not in (None, "root", 0, "0"):
            self.logger.debug(f"toolhost runs commands as the sandbox's root, not as {user!r}")
        merged = {"HOME": "/root", **(self._merge_env(env) or {})}
        assignments = [f"{name}={value}" for name, value in merged.items()]
        directory = cwd or self._plan.workdir
        try:
            status, stdout, stderr = await self.confined.run(
                ["env", "-C", directory, "--", *assignments, "bash", "-c", command], timeout=timeout_sec)
        except TimeoutError:
            raise RuntimeError(f"Command timed out after {timeout_sec} seconds")
        return ExecResult(
            stdout=stdout.decode("utf-8", errors="replace"), stderr=stderr.decode("utf-8", errors="replace"),
            return_code=status)

    async def _checked(self, what: str, argv: list[str], input: bytes | None = None, max_output: int = 1 << 20) -> bytes:
        status, stdout, stderr = await self.confined.run(argv, input, None, max_output)
        if status != 0:
            raise RuntimeError(f"{what} failed in the toolhost sandbox (exit {status}): {stderr.decode(errors='replace').strip()}")
        return stdout

    async def upload_file(self, source_path: Path | str, target_path: str) -> None:
        self._ensure_shown(target_path)
        await self._checked(f"upload to {target_path}", ["sh", "-c", WRITE_SCRIPT, "sh", target_path], Path(source_path).read_bytes())

    async def upload_dir(self, source_dir: Path | str, target_dir: str) -> None:
        self._ensure_shown(target_dir)
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for entry in sorted(Path(source_dir).iterdir()):
                tar.add(entry, arcname=entry.name)
        await self._checked(
            f"upload to {target_dir}", ["sh", "-c", 'mkdir -p -- "$1" && tar -x --no-same-owner -C "$1"', "sh", target_dir],
            archive.getvalue())

    async def download_file(self, source_path: str, target_path: Path | str) -> None:
        if self._root is None:
            return  # a trial refused at start has nothing to collect
        data = await self._checked(f"download of {source_path}", ["cat", "--", source_path], max_output=DOWNLOAD_LIMIT)
        if len(data) > DOWNLOAD_LIMIT:
            raise RuntimeError(f"{source_path} is over {DOWNLOAD_LIMIT} bytes")
        target = Path(target_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    async def download_dir(self, source_dir: str, target_dir: Path | str) -> None:
        await self.download_dir_with_exclusions(source_dir=source_dir, target_dir=target_dir, exclude=[])

    async def download_dir_with_exclusions(self, *, source_dir: str, target_dir: Path | str, exclude: list[str]) -> None:
        # One tar over the pipe, not Harbor's default of an archive left in /tmp between two
        # commands: each command here has a /tmp of its own.
        target = Path(target_dir)
        target.mkdir(parents=True, exist_ok=True)
        if self._root is None:
            return  # a trial refused at start has nothing to collect
        excludes = [f"--exclude={pattern}" for pattern in exclude]
        data = await self._checked(
            f"download of {source_dir}", ["tar", "-c", *excludes, "-C", source_dir, "."], max_output=DOWNLOAD_LIMIT)
        if len(data) > DOWNLOAD_LIMIT:
            raise RuntimeError(f"{source_dir} is over {DOWNLOAD_LIMIT} bytes")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(target, filter=self._only_data)

    def _only_data(self, member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        """The archive is what sandboxed commands left: an absolute name, a link out of the target
        or a device file is left out (and logged), the rest is extracted as plain data."""
        try:
            return tarfile.data_filter(member, path)
        except tarfile.FilterError as error:
            self.logger.warning(f"toolhost environment: not bringing back {member.name!r}: {error}")
            return None


def _flag(value) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes", "on")


class ToolhostAgent(BaseAgent):
    """toolhost's own agent loop (`toolhost run`) on the trial's instruction."""

    SUPPORTS_ATIF = True

    def __init__(self, logs_dir: Path, model_name: str | None = None, *args, endpoint: str | None = None,
                 constrain=False, profile: str | None = None, max_turns=None, api: str | None = None, **kwargs) -> None:
        self.endpoint = endpoint
        self.constrain = _flag(constrain)
        self.profile = profile
        self.max_turns = int(max_turns) if max_turns else None
        self.api = api
        super().__init__(logs_dir, model_name, *args, **kwargs)

    @staticmethod
    def name() -> str:
        return "toolhost"

    def version(self) -> str | None:
        return os.popen(f"{shlex.quote(toolhost_binary())} --version").read().strip() or None

    async def setup(self, environment: BaseEnvironment) -> None:
        if not isinstance(environment, ToolhostEnvironment):
            raise RuntimeError(
                "ToolhostAgent drives toolhost on this machine, on a ToolhostEnvironment's workspace: run it with "
                "--env toolhost_eval.harbor:ToolhostEnvironment")
        if not self.endpoint:
            raise ValueError("ToolhostAgent needs the model's endpoint: --ak endpoint=localhost:8080 (or any URL toolhost run takes)")

    def _command(self, instruction: str, environment: ToolhostEnvironment, out: Path) -> list[str]:
        # The agent's workspace is the folder the workdir lies in (/app), shown at the same path:
        # git_commit's repository is then /app's own, and toolhost keeps its .git read-only to
        # the model's commands, as in any toolhost workspace.
        confined = environment.confined
        folder, target = environment.workdir_mount
        workspace = Confined(folder, confined.state, self.profile or confined.profile, mounts=[f".:{target}"])
        command = [confined.binary, "run", "--endpoint", self.endpoint, *workspace.options(), "--prompt", instruction, "--out", str(out)]
        if self.model_name:
            # Harbor's names carry a provider (openai/gpt-4o); the endpoint wants the model's own.
            command += ["--model", self.model_name.split("/", 1)[-1]]
        if self.constrain:
            command.append("--constrain")
        if self.max_turns:
            command += ["--max-turns", str(self.max_turns)]
        if self.api:
            command += ["--api", self.api]
        return command

    async def run(self, instruction: str, environment: BaseEnvironment, context: AgentContext) -> None:
        import asyncio

        assert isinstance(environment, ToolhostEnvironment)
        # toolhost writes transcript.jsonl, summary.json and trajectory.json into the agent folder.
        out = self.logs_dir
        process = await asyncio.create_subprocess_exec(
            *self._command(instruction, environment, out), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            output, _ = await process.communicate()
        except asyncio.CancelledError:
            # Harbor's timeout: toolhost keeps the transcript and writes its summary on SIGINT.
            process.send_signal(2)
            await asyncio.wait_for(process.wait(), 30)
            self._collect(out, context)
            raise
        (self.logs_dir / "toolhost-run.log").write_bytes(output)
        if process.returncode == 2:
            raise RuntimeError(f"toolhost run refused its arguments: {output.decode(errors='replace')[-2000:]}")
        self._collect(out, context)

    def _collect(self, out: Path, context: AgentContext) -> None:
        """The run's tokens and outcome into Harbor's context."""
        summary_path = out / "summary.json"
        if not summary_path.exists():
            return
        summary = json.loads(summary_path.read_text())
        context.n_input_tokens = summary.get("prompt_tokens")
        context.n_output_tokens = summary.get("completion_tokens")
        processed = summary.get("prompt_tokens_processed")
        if processed is not None and context.n_input_tokens is not None:
            context.n_cache_tokens = max(0, context.n_input_tokens - processed)
        # toolhost knows no prices: a local model's cost is Harbor's to leave unknown.
        context.metadata = {
            key: summary[key] for key in ("stop_reason", "outcome", "tool_calls", "turns", "model", "missing") if key in summary
        }
