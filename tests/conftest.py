"""Rules shared by the three test tiers.

- Markers: ``netns`` and ``vm`` are registered here and put on every test of
  tests/netns and tests/vm automatically; a test under tests/unit carrying one is an error.
- Unit-tier guard: tests/unit is pure. While a unit test runs, opening a netlink socket or
  starting a program that reads or changes kernel networking state (ip, ipset, iptables,
  ipvsadm, nft, modprobe, …) makes that test fail, even if kpctl swallowed the error.
- Network namespace guard: ``kpctl --netns NAME`` enters NAME for the whole process
  (setns), also when a test drives the CLI in-process. After every test the pytest process
  is put back into the network namespace it started in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

TESTS_DIR = Path(__file__).resolve().parent
TIER_MARKERS = {"netns": TESTS_DIR / "netns", "vm": TESTS_DIR / "vm"}

# Programs a unit test must not start: they read or change the kernel's network state.
KERNEL_PROGRAMS = frozenset({
    "ip", "ipset", "iptables", "iptables-save", "iptables-restore", "iptables-legacy",
    "iptables-legacy-save", "iptables-legacy-restore", "iptables-nft", "iptables-nft-save",
    "iptables-nft-restore", "ip6tables", "ip6tables-save", "ip6tables-restore", "ipvsadm",
    "ipvsadm-save", "ipvsadm-restore", "nft", "modprobe", "insmod", "rmmod", "sysctl",
    "conntrack", "tc", "bridge", "nsenter", "unshare", "vng", "virtme-run",
})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netns: needs root; runs against the host kernel inside a network namespace the test creates")
    config.addinivalue_line("markers", "vm: needs the IPVS kernel in the throwaway VM (tests/vm)")
    sys.addaudithook(_unit_guard_hook)


def _tier_of(path: Path) -> str:
    for name, directory in TIER_MARKERS.items():
        if directory in path.parents:
            return name
    if (TESTS_DIR / "unit") in path.parents:
        return "unit"
    return "other"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = _tier_of(Path(str(item.path)))
        if tier in TIER_MARKERS:
            item.add_marker(getattr(pytest.mark, tier))
        elif tier == "unit":
            wrong = [m.name for m in item.iter_markers() if m.name in TIER_MARKERS]
            if wrong:
                raise pytest.UsageError(
                    f"{item.nodeid} is marked {wrong[0]!r} but lives in tests/unit; "
                    f"move it to tests/{wrong[0]}/")


# ---- unit-tier guard -------------------------------------------------------------------

_guard: dict[str, Any] = {"active": False, "violations": []}


def _unit_guard_hook(event: str, args: tuple[Any, ...]) -> None:
    if not _guard["active"]:
        return
    if event == "socket.__new__" and len(args) >= 2 and args[1] == socket.AF_NETLINK:
        _guard["violations"].append("opened a netlink socket (kernel state)")
        raise PermissionError("unit tests are pure: netlink sockets are refused (move the test to tests/netns or tests/vm)")
    if event == "subprocess.Popen" and len(args) >= 2:
        argv = args[1]
        if isinstance(argv, (str, bytes, os.PathLike)):
            argv = [argv]
        first = os.fsdecode(list(argv)[0]) if argv else os.fsdecode(args[0] or "")
        program = os.path.basename(first.split()[0]) if first.strip() else ""
        if program in KERNEL_PROGRAMS:
            _guard["violations"].append(f"started {program!r} (kernel state)")
            raise PermissionError(f"unit tests are pure: refusing to run {program!r} (move the test to tests/netns or tests/vm)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    unit = _tier_of(Path(str(item.path))) == "unit"
    _guard["violations"] = []
    _guard["active"] = unit
    try:
        result = yield  # a test that raised has failed already; nothing to add
    finally:
        _guard["active"] = False
    if unit and _guard["violations"]:
        pytest.fail("unit-tier guard: this test " + "; ".join(dict.fromkeys(_guard["violations"]))
                    + " -- unit tests must be pure; put it in tests/netns or tests/vm", pytrace=False)
    return result


# ---- network namespace guard -------------------------------------------------------------

_CLONE_NEWNET = 0x40000000


def _netns_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


@pytest.fixture(scope="session")
def _original_netns() -> Iterator[int]:
    fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


@pytest.fixture(autouse=True)
def _return_to_original_netns(_original_netns: int) -> Iterator[None]:
    """Undo an in-process `kpctl --netns NAME` so the next test starts where pytest started."""
    before = os.fstat(_original_netns).st_ino
    yield
    if _netns_inode() != before:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.setns(_original_netns, _CLONE_NEWNET) != 0:
            pytest.exit(f"cannot return to the original network namespace: errno {ctypes.get_errno()}", returncode=3)
