"""`kpctl doctor`: named checks over a NodeState for the failures operators actually hit, in
every kube-proxy mode.

Each check has a stable id, a severity, the pieces of the node it reads (ipvs, links, ipsets,
iptables, nftables, sysctls) and the modes it is about.  The active mode comes from
kpctl.core.modes; a check for another mode does not run (leftovers of that mode are named
by the leftover-* checks instead).  A check whose pieces could not be read is skipped and the
report says so once per piece.  Checks are pure functions NodeState -> [Finding].
"""

from __future__ import annotations

from collections.abc import Sequence

from kpctl.core.doctor import common, iptables, ipvs, leftovers, nftables
from kpctl.core.doctor.base import Check
from kpctl.core.doctor.leftovers import node_modes
from kpctl.core.modes import IPTABLES, IPVS, NFTABLES
from kpctl.errors import InvalidInput
from kpctl.model.doctor import ERROR, INFO, WARNING, DoctorReport, Finding, NodeState

__all__ = ["CHECKS", "Check", "node_modes", "run_checks", "select_checks"]

_IPVS = (IPVS,)
_IPT = (IPTABLES,)
_NFT = (NFTABLES,)
# Every piece a mode leaves state in: what the leftover checks read.
_ALL_STATE = ("links", "ipsets", "iptables", "nftables")

CHECKS: dict[str, Check] = {c.id: c for c in (
    # --- IPVS mode
    Check("vip-missing", ERROR, "IPVS service whose VIP is not bound", ("ipvs", "links"), ipvs.check_vip_missing,
          _IPVS),
    Check("vip-orphan", WARNING, "VIP bound with no IPVS service", ("ipvs", "links"), ipvs.check_vip_orphan, _IPVS),
    Check("clusterip-ipset-missing", ERROR, "service VIP missing from KUBE-CLUSTER-IP",
          ("ipvs", "links", "ipsets"), ipvs.check_clusterip_ipset_missing, _IPVS),
    Check("ipset-orphan-member", WARNING, "service set member with no IPVS service", ("ipvs", "ipsets"),
          ipvs.check_ipset_orphan_member, _IPVS),
    Check("service-no-servers", ERROR, "service with no (or only weight-0) real servers", ("ipvs",),
          ipvs.check_service_no_servers, _IPVS),
    Check("server-weight0-drained", WARNING, "weight-0 real server with no connections left", ("ipvs",),
          ipvs.check_server_weight0_drained, _IPVS),
    Check("loopback-vip", ERROR, "virtual service on a loopback address", ("ipvs",), ipvs.check_loopback_vip,
          _IPVS),
    Check("vs-conntrack", ERROR, "net.ipv4.vs.conntrack off while masquerading", ("sysctls", "iptables"),
          ipvs.check_vs_conntrack, _IPVS),
    Check("sysctl-expire-nodest-conn", WARNING, "net.ipv4.vs.expire_nodest_conn", ("sysctls",),
          ipvs.check_expire_nodest_conn, _IPVS),
    Check("sysctl-expire-quiescent-template", WARNING, "net.ipv4.vs.expire_quiescent_template", ("sysctls",),
          ipvs.check_expire_quiescent_template, _IPVS),
    Check("strict-arp", WARNING, "ARP sysctls with LoadBalancer IPs bound", ("links", "ipsets", "sysctls"),
          ipvs.check_strict_arp, _IPVS),
    Check("ipvs-tcp-timeout", WARNING, "IPVS tcp timeout below tcp_keepalive_time", ("ipvs", "sysctls"),
          ipvs.check_ipvs_tcp_timeout, _IPVS),
    # --- iptables mode
    Check("iptables-svc-without-sep", ERROR, "KUBE-SVC chain jumping to no (existing) KUBE-SEP", ("iptables",),
          iptables.check_svc_without_sep, _IPT),
    Check("iptables-dangling-jump", ERROR, "rule jumping to a KUBE-* chain that does not exist", ("iptables",),
          iptables.check_dangling_jump, _IPT),
    Check("iptables-no-endpoints-not-rejected", ERROR, "no-endpoint rejects not reached from the built-in chains",
          ("iptables",), iptables.check_no_endpoints_not_rejected, _IPT),
    Check("iptables-rule-count", WARNING, f"more than {iptables.RULES_AT_SCALE} iptables rules", ("iptables",),
          iptables.check_rule_count, _IPT),
    Check("route-localnet", WARNING, "NodePorts on 127.0.0.1 without route_localnet", ("iptables", "sysctls"),
          iptables.check_route_localnet, _IPT),
    # --- nftables mode
    Check("nft-table-missing", ERROR, "no kube-proxy nft table", ("nftables",), nftables.check_table_missing, _NFT),
    Check("nft-table-incomplete", ERROR, "kube-proxy nft table without its base chains or maps", ("nftables",),
          nftables.check_table_incomplete, _NFT),
    Check("nft-too-old", ERROR, "nft < 1.0.1 or kernel < 5.13 in nftables mode", ("nftables",),
          nftables.check_versions, _NFT),
    Check("nft-map-chain-missing", ERROR, "map element or jump to a chain that does not exist", ("nftables",),
          nftables.check_map_chain_missing, _NFT),
    Check("nft-service-without-endpoint", ERROR, "service chain reaching no endpoint chain", ("nftables",),
          nftables.check_service_without_endpoint, _NFT),
    Check("nft-cluster-ip-unserved", ERROR, "ClusterIP in no service map (rejected)", ("nftables",),
          nftables.check_cluster_ip_unserved, _NFT),
    Check("nft-cluster-ips-check", WARNING, "cluster-ips-check chain missing or not hooked", ("nftables",),
          nftables.check_cluster_ips_check, _NFT),
    # --- every mode
    Check("leftover-ipvs", ERROR, "IPVS mode state left after a mode switch", ("links", "ipsets"),
          leftovers.check_leftover_ipvs),
    Check("leftover-iptables", ERROR, "iptables mode chains left after a mode switch", ("iptables",),
          leftovers.check_leftover_iptables),
    Check("leftover-nftables", ERROR, "stale kube-proxy nft table after a mode switch", ("nftables",),
          leftovers.check_leftover_nftables),
    Check("leftover-userspace", ERROR, "userspace mode chains left after a mode switch", ("iptables",),
          leftovers.check_leftover_userspace),
    Check("ip-forward", ERROR, "IP forwarding off", ("sysctls",), common.check_ip_forward),
    Check("forward-drop", ERROR, "FORWARD policy DROP that forwarded Service traffic does not get past", ("iptables",),
          common.check_forward_drop, (IPVS, IPTABLES, NFTABLES)),
    Check("iptables-hook-missing", ERROR, "kube-proxy chain no built-in chain jumps to", ("iptables",),
          common.check_hooks_missing, (IPVS, IPTABLES)),
    Check("iptables-backends-mixed", ERROR, "KUBE-* rules in both iptables backends", ("iptables",),
          common.check_iptables_backends_mixed),
    Check("ipset-near-maxelem", WARNING, "ipset within 10% of maxelem", ("ipsets",), common.check_ipset_near_maxelem),
    Check("conntrack-near-max", WARNING, "conntrack table within 10% of nf_conntrack_max", ("sysctls",),
          common.check_conntrack_near_max),
    Check("br-netfilter", ERROR, "bridges without br_netfilter / bridge-nf-call-iptables", ("links", "sysctls"),
          common.check_br_netfilter),
)}
# Pieces the active mode is worked out from: read whatever checks were selected.
MODE_PIECES: tuple[str, ...] = ("ipvs",) + _ALL_STATE


def select_checks(ids: Sequence[str]) -> list[Check]:
    """The checks named (all when none); an unknown id is bad input."""
    unknown = [i for i in ids if i not in CHECKS]
    if unknown:
        raise InvalidInput(f"unknown check {unknown[0]!r}", "known checks: " + ", ".join(CHECKS))
    return [CHECKS[i] for i in dict.fromkeys(ids)] if ids else list(CHECKS.values())


def run_checks(node: NodeState, checks: Sequence[Check]) -> DoctorReport:
    modes = node_modes(node)
    findings: list[Finding] = []
    skipped: dict[str, list[str]] = {}
    ran: list[str] = []
    not_applicable: list[str] = []
    for check in checks:
        if check.modes and modes.active not in check.modes:
            not_applicable.append(check.id)
            continue
        missing = [piece for piece in check.needs if piece in node.unavailable]
        if missing:
            skipped.setdefault(missing[0], []).append(check.id)
            continue
        ran.append(check.id)
        findings.extend(check.run(node))
    for piece, ids in skipped.items():
        findings.append(Finding(
            "not-readable", INFO, piece, f"could not read {piece}: {node.unavailable[piece]}",
            "the checks that need it were skipped: " + ", ".join(ids),
            "fix the reason above (root, kernel support), or use a snapshot that has this section"))
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    findings.sort(key=lambda f: order[f.severity])
    return DoctorReport(findings=tuple(findings), checks_run=tuple(ran), mode=modes.active,
                        mode_reason=modes.reason, not_applicable=tuple(not_applicable))
