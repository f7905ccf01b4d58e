"""Named errors and the exit codes of shared/CLI.md.

Backends raise these; the single handler in ``kpctl.cli.main`` turns them into
``kpctl: error: …`` and the exit status.  Nothing here imports click or rich.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    NEGATIVE = 1  # not a member, packet dropped, a check failed
    USAGE = 2  # bad usage or bad input; nothing was changed
    NOT_FOUND = 3
    ALREADY_EXISTS = 4
    PERMISSION_DENIED = 5
    KERNEL_FEATURE_MISSING = 6
    INTERRUPTED = 130


class KpctlError(Exception):
    """Base of every error kpctl reports to the user as one line."""

    exit_status: ExitStatus = ExitStatus.NEGATIVE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InvalidInput(KpctlError):
    exit_status = ExitStatus.USAGE


class NotFound(KpctlError):
    exit_status = ExitStatus.NOT_FOUND


class AlreadyExists(KpctlError):
    exit_status = ExitStatus.ALREADY_EXISTS


class PermissionDenied(KpctlError):
    exit_status = ExitStatus.PERMISSION_DENIED

    def __init__(self, message: str = "permission denied", hint: str | None = None) -> None:
        super().__init__(message, hint or "run as root or with CAP_NET_ADMIN")


class KernelFeatureMissing(KpctlError):
    exit_status = ExitStatus.KERNEL_FEATURE_MISSING


class NegativeAnswer(KpctlError):
    """A well-formed question whose answer is no (exit 1), e.g. `ipset test` on a non-member."""

    exit_status = ExitStatus.NEGATIVE


class KernelError(KpctlError):
    """A kernel refusal that maps to no more specific error."""

    exit_status = ExitStatus.NEGATIVE


IPVS_HINT = "is the ip_vs module loaded? try: kpctl modules check --load"
