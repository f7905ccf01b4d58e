"""Tier 2: the host's real kernel, inside network namespaces the tests create.

Fixtures:
  netns          a fresh namespace ``kpctl-test-<random>``; yields its name, deleted afterwards
  netns_factory  call it to get more namespaces (all deleted afterwards)
Helper:
  run_in(ns, *cmd, check=True, input=None) -> CompletedProcess   (``ip netns exec NS CMD…``)

Drive kpctl in-process with ``tests.cli_helpers.kpctl("--netns", ns, …)``: tests/conftest.py
puts the pytest process back into its own namespace after every test.
Never change state outside a namespace created here (no ipset/iptables on the host).
The tier needs root: without it every test errors (it never skips).
"""

from __future__ import annotations

import os
import secrets
import subprocess
from typing import Callable, Iterator

import pytest

NETNS_PREFIX = "kpctl-test-"


def run(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a program in the current namespace; on failure with check, fail with its stderr."""
    proc = subprocess.run(list(cmd), input=input, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"stdout: {proc.stdout.strip()}\nstderr: {proc.stderr.strip()}")
    return proc


def run_in(ns: str, *cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run CMD inside network namespace NS (``ip netns exec``)."""
    return run("ip", "netns", "exec", ns, *cmd, check=check, input=input)


def netns_inode(ns: str) -> int:
    """The inode identifying namespace NS (compare with os.stat('/proc/self/ns/net'))."""
    return os.stat(f"/run/netns/{ns}").st_ino


def _create() -> str:
    name = NETNS_PREFIX + secrets.token_hex(4)
    run("ip", "netns", "add", name)
    # A namespace starts with lo down; most kernel tools and any local traffic want it up.
    run_in(name, "ip", "link", "set", "lo", "up")
    return name


def _delete(name: str) -> None:
    subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


@pytest.fixture(autouse=True)
def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the netns tier needs root (it creates network namespaces): run it as root", pytrace=False)


@pytest.fixture
def netns_factory() -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def make() -> str:
        name = _create()
        created.append(name)
        return name

    yield make
    for name in reversed(created):
        _delete(name)


@pytest.fixture
def netns(netns_factory: Callable[[], str]) -> str:
    return netns_factory()
