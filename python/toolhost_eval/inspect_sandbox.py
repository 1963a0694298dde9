"""The Inspect sandbox provider `sandbox="toolhost"`: each sample gets a workspace of its own, and
every exec, read and write runs confined in it through `toolhost sandbox` (seccomp, namespaces,
the profile's filesystem view). File reads and writes run inside the sandbox too (`cat`), so the
host never opens a path a sandboxed command may have turned into a symlink.

Config: `sandbox=("toolhost", PROFILE)` picks toolhost's sandbox profile (default: "default").
What this sandbox does not give (see the README): a /tmp that lasts from one exec to the next,
writes outside the workspace, other users (`user=` must be the sandbox's own).
"""
import os
import shutil
import tempfile
from typing import Literal, Union, overload

from toolhost_eval._toolhost import WRITE_SCRIPT, Confined

from inspect_ai.util import (
    ExecResult,
    OutputLimitExceededError,
    SandboxEnvironment,
    SandboxEnvironmentConfigType,
    SandboxEnvironmentLimits,
    SandboxUserUnsupportedError,
    sandboxenv,
)

@sandboxenv(name="toolhost")
class ToolhostSandboxEnvironment(SandboxEnvironment):
    """One sample's confined workspace."""

    def __init__(self, profile: str) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="toolhost-inspect-")
        self.workspace = os.path.join(self.root, "workspace")
        os.mkdir(self.workspace)
        self.confined = Confined(self.workspace, os.path.join(self.root, "state"), profile)
        self._user: str | None = None

    @classmethod
    async def sample_init(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None, metadata: dict[str, str]
    ) -> dict[str, SandboxEnvironment]:
        profile = config if isinstance(config, str) and config else "default"
        return {"default": cls(profile)}

    @classmethod
    async def sample_cleanup(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None,
        environments: dict[str, SandboxEnvironment], interrupted: bool,
    ) -> None:
        for environment in environments.values():
            # rmtree does not follow symlinks the sample left behind.
            shutil.rmtree(environment.as_type(ToolhostSandboxEnvironment).root, ignore_errors=True)

    async def _run(
        self, argv: list[str], input: bytes | None, timeout: int | None, max_output: int
    ) -> tuple[int, bytes, bytes]:
        """Runs argv confined; returns (exit status, stdout, stderr). Raises TimeoutError."""
        return await self.confined.run(argv, input, timeout, max_output)

    async def _sandbox_user(self) -> str:
        if self._user is None:
            _, stdout, _ = await self._run(["id", "-un"], None, 30, 1024)
            self._user = stdout.decode().strip()
        return self._user

    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: int | None = None,
        timeout_retry: bool = True,
        concurrency: bool = True,
    ) -> ExecResult[str]:
        if user is not None and user != await self._sandbox_user():
            raise SandboxUserUnsupportedError(
                f"the toolhost sandbox runs commands as {self._user!r} only, not {user!r}")
        directory = self.workspace if cwd is None else os.path.join(self.workspace, cwd)
        assignments = [f"{name}={value}" for name, value in (env or {}).items()]
        data = input.encode("utf-8") if isinstance(input, str) else input
        limit = SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE
        status, stdout, stderr = await self._run(["env", "-C", directory, "--", *assignments, *cmd], data, timeout, limit)
        if status == 126 and b"Permission denied" in stderr:
            raise PermissionError(f"cannot run {cmd[0]}: permission denied")
        if len(stdout) > limit:
            raise OutputLimitExceededError(
                limit_str=SandboxEnvironmentLimits.MAX_EXEC_OUTPUT_SIZE_STR,
                truncated_output=stdout[:limit].decode("utf-8", errors="replace"))
        return ExecResult(
            success=status == 0, returncode=status,
            stdout=stdout.decode("utf-8", errors="replace"), stderr=stderr.decode("utf-8", errors="replace"))

    def _absolute(self, file: str) -> str:
        return file if os.path.isabs(file) else os.path.join(self.workspace, file)

    @staticmethod
    def _raise_for(file: str, stderr: bytes) -> None:
        text = stderr.decode("utf-8", errors="replace").strip()
        if "No such file or directory" in text:
            raise FileNotFoundError(f"{file}: no such file ({text})")
        if "Is a directory" in text:
            raise IsADirectoryError(f"{file} is a directory ({text})")
        if "Permission denied" in text or "Read-only file system" in text:
            raise PermissionError(f"{file}: permission denied ({text})")
        raise RuntimeError(f"{file}: {text}")

    async def write_file(self, file: str, contents: str | bytes) -> None:
        data = contents.encode("utf-8") if isinstance(contents, str) else contents
        status, _, stderr = await self._run(["sh", "-c", WRITE_SCRIPT, "sh", self._absolute(file)], data, None, 1 << 20)
        if status != 0:
            self._raise_for(file, stderr)

    @overload
    async def read_file(self, file: str, text: Literal[True] = True) -> str: ...

    @overload
    async def read_file(self, file: str, text: Literal[False]) -> bytes: ...

    async def read_file(self, file: str, text: bool = True) -> Union[str, bytes]:
        limit = SandboxEnvironmentLimits.MAX_READ_FILE_SIZE
        status, stdout, stderr = await self._run(["cat", "--", self._absolute(file)], None, None, limit)
        if status != 0:
            self._raise_for(file, stderr)
        if len(stdout) > limit:
            raise OutputLimitExceededError(limit_str=SandboxEnvironmentLimits.MAX_READ_FILE_SIZE_STR, truncated_output=None)
        return stdout.decode("utf-8") if text else stdout
