"""Tier 3: the real IPVS kernel inside the throwaway VM (run by scripts/vm-tests.sh).

Outside the VM these tests ERROR (they never pass or skip): scripts/vm-tests.sh sets
KPCTL_IN_VM=1 inside the VM, where the modules are loaded before pytest starts.

Fixtures:
  (autouse) a fresh IPVS table per test: ``ipvsadm -C`` before; after: ``ipvsadm -C``,
            default timeouts (900 120 300) and no sync daemons
  ipvsadm   the reference tool: ``ipvsadm("-Sn") -> stdout`` (raises on a non-zero exit
            unless check=False); also importable: ``from tests.vm.nodes import ipvsadm``
  node      a kube-proxy-shaped node (tests/vm/nodes.py): ``node.add_pod(ip)``,
            ``node.add_vip(addr)``, ``pod.serve(port)``, ``pod.request(addr, port)``; torn down after
Drive kpctl in-process with ``tests.cli_helpers.kpctl(...)`` (a Python start costs ~2 s here).
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

import pytest

from tests.vm.nodes import Node, ipvsadm as run_ipvsadm, sh

IN_VM_VARIABLE = "KPCTL_IN_VM"
DEFAULT_TIMEOUTS = ("900", "120", "300")  # the kernel's tcp, tcpfin, udp defaults


@pytest.fixture(scope="session", autouse=True)
def _require_vm() -> None:
    if os.environ.get(IN_VM_VARIABLE) != "1":
        pytest.fail("tests/vm runs only inside the VM: use `bash scripts/vm-tests.sh` "
                    f"(or scripts/test.sh --vm); {IN_VM_VARIABLE}=1 is not set", pytrace=False)
    if not os.path.exists("/proc/net/ip_vs"):
        sh("modprobe", "ip_vs")
    if not os.path.exists("/proc/net/ip_vs"):
        pytest.fail("no IPVS in this kernel (/proc/net/ip_vs missing after modprobe ip_vs)", pytrace=False)


@pytest.fixture(autouse=True)
def _fresh_ipvs_table(_require_vm: None) -> Iterator[None]:
    run_ipvsadm("-C")
    yield
    sh("sh", "-c",
       "ipvsadm -C; ipvsadm --set {} {} {}; ".format(*DEFAULT_TIMEOUTS)
       + "ipvsadm --stop-daemon master 2>/dev/null; ipvsadm --stop-daemon backup 2>/dev/null; true")


@pytest.fixture
def ipvsadm() -> Callable[..., str]:
    return run_ipvsadm


@pytest.fixture
def node() -> Iterator[Node]:
    built = Node()
    try:
        yield built
    finally:
        built.cleanup()
