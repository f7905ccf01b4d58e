"""The VM tier's scaffold: the IPVS kernel is there, tables start empty, and a node built by
tests/vm/nodes.py really forwards a pod's connection through an IPVS service to pods."""

from __future__ import annotations

import os
from typing import Callable

from tests.vm.nodes import Node


def test_runs_inside_the_vm_with_ipvs(ipvsadm: Callable[..., str]) -> None:
    assert os.environ.get("KPCTL_IN_VM") == "1"
    assert os.path.exists("/proc/net/ip_vs")
    assert ipvsadm("-Ln").startswith("IP Virtual Server version 1.2.1")


def test_each_test_starts_with_an_empty_table_part_one(ipvsadm: Callable[..., str]) -> None:
    assert ipvsadm("-Sn") == ""
    ipvsadm("-A", "-t", "10.254.0.1:443", "-s", "rr")  # left behind on purpose


def test_each_test_starts_with_an_empty_table_part_two(ipvsadm: Callable[..., str]) -> None:
    assert ipvsadm("-Sn") == ""


def test_node_forwards_a_pod_through_an_ipvs_service(node: Node, ipvsadm: Callable[..., str]) -> None:
    web1 = node.add_pod("172.30.22.4", name="kpctl-web-1")
    web2 = node.add_pod("172.30.78.4", name="kpctl-web-2")
    client = node.add_pod("172.30.78.9", name="kpctl-client")
    web1.serve(8080)
    web2.serve(8080)
    # Pod to pod, routed through the node (calico style), no NAT: the server sees the pod.
    assert client.request("172.30.22.4", 8080) == "kpctl-web-1 172.30.78.9"
    node.add_vip("10.254.199.160")
    ipvsadm("-A", "-t", "10.254.199.160:8080", "-s", "rr")
    ipvsadm("-a", "-t", "10.254.199.160:8080", "-r", "172.30.22.4:8080", "-m", "-w", "1")
    ipvsadm("-a", "-t", "10.254.199.160:8080", "-r", "172.30.78.4:8080", "-m", "-w", "1")
    answers = {client.request("10.254.199.160", 8080).split()[0] for _ in range(4)}
    assert answers == {"kpctl-web-1", "kpctl-web-2"}
    assert "ActiveConn" in ipvsadm("-Ln")
