"""Doctor checks for kube-proxy's iptables mode: service chains that reach no endpoint, jumps to
chains that are gone, unreachable no-endpoint rejects, rule count at scale, localhost NodePorts.

One pass over each rule set's chains; chains are looked up by name in the table's mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from kpctl.model.doctor import ERROR, WARNING, Finding, NodeState

if TYPE_CHECKING:  # the iptables model and reader are imported where a node has rules to check
    from kpctl.model.iptables import Chain, Rule, Ruleset, Table

# Above this many rules a full iptables-restore per sync takes seconds and kube-proxy falls
# behind (the scale at which KEP-3866 recommends nftables mode).
RULES_AT_SCALE = 100_000
SERVICE_PREFIXES: tuple[str, ...] = ("KUBE-SVC-", "KUBE-SVL-")
# kube-proxy's no-endpoint rejects: filter chain -> the built-in chains that must jump to it.
REJECT_HOOKS: dict[str, tuple[str, ...]] = {"KUBE-SERVICES": ("OUTPUT", "FORWARD"),
                                            "KUBE-EXTERNAL-SERVICES": ("INPUT", "FORWARD")}


def _rulesets(node: NodeState) -> Iterator[Ruleset]:
    from kpctl.core.iptables_save import read_all  # (here: only the iptables-mode checks read rules)

    for by_backend in node.iptables.values():
        for ruleset in by_backend.values():
            yield read_all(ruleset)  # the checks read every rule's target


def _where(ruleset: Ruleset) -> str:
    return f"{ruleset.family}/{ruleset.backend}"


def _service_name(chain: Chain) -> str:
    comment = next((r.comment for r in chain.rules if r.comment), None)
    return comment.split(" ")[0] if comment else "?"


def check_svc_without_sep(node: NodeState) -> list[Finding]:
    findings = []
    for ruleset in _rulesets(node):
        nat = ruleset.table("nat")
        if nat is None:
            continue
        # kube-proxy leaves a KUBE-SVL chain empty when there are no local endpoints, but then
        # nothing jumps to it: only a chain that packets can reach is a problem.
        reached = {t for chain in nat.chains.values() for t in (r.target_name for r in chain.rules) if t}
        for chain in nat.chains.values():
            if not chain.name.startswith(SERVICE_PREFIXES) or chain.name not in reached:
                continue
            targets = [t for t in (r.target_name for r in chain.rules) if t]
            seps = [t for t in targets if t.startswith("KUBE-SEP-")]
            if any(t in nat.chains for t in seps) or "KUBE-MARK-DROP" in targets:
                continue  # reaches an endpoint, or is kube-proxy's "no local endpoints" drop
            missing = f" ({', '.join(seps[:3])} {'does' if len(seps) == 1 else 'do'} not exist)" if seps else ""
            findings.append(Finding(
                "iptables-svc-without-sep", ERROR, f"nat/{chain.name}",
                f"{chain.name} ({_service_name(chain)}, {_where(ruleset)}) jumps to no KUBE-SEP chain{missing}",
                "packets for the service fall through it un-DNATed: clients of the ClusterIP get no "
                "answer instead of an endpoint or a reject",
                "restart kube-proxy (it rewrites every service chain on a full sync) and check its log; "
                "kubectl get endpointslices shows whether the Service has endpoints"))
    return findings


def _dangling(table: Table) -> Iterator[tuple[Rule, str]]:
    for chain in table.chains.values():
        if chain.name.startswith(SERVICE_PREFIXES):
            continue  # told by iptables-svc-without-sep, with the service's name
        for rule in chain.rules:
            target = rule.target_name
            if target and target.startswith("KUBE-") and target not in table.chains:
                yield rule, target


def check_dangling_jump(node: NodeState) -> list[Finding]:
    return [Finding(
        "iptables-dangling-jump", ERROR, f"{table.name}/{rule.chain}",
        f"{table.name}/{rule.chain} rule {rule.number} jumps to {target}, which does not exist "
        f"({_where(ruleset)})",
        "iptables-restore refuses a rule set with such a jump, so kube-proxy's next sync fails "
        "as a whole and no service change reaches the node",
        f"restart kube-proxy; by hand: iptables -t {table.name} -D {rule.chain} {rule.number}")
        for ruleset in _rulesets(node) for table in ruleset.tables.values() for rule, target in _dangling(table)]


def _jumps_to(chain: Chain | None, name: str) -> bool:
    return chain is not None and any(r.jump == name for r in chain.rules)


def check_no_endpoints_not_rejected(node: NodeState) -> list[Finding]:
    findings = []
    for ruleset in _rulesets(node):
        for name, hooks in REJECT_HOOKS.items():
            chain = ruleset.chain("filter", name)
            rejects = [r for r in chain.rules if r.target_name in ("REJECT", "DROP")] if chain else []
            if not rejects:
                continue
            unhooked = [hook for hook in hooks if not _jumps_to(ruleset.chain("filter", hook), name)]
            if not unhooked:
                continue
            findings.append(Finding(
                "iptables-no-endpoints-not-rejected", ERROR, f"filter/{name}",
                f"filter {name} holds {len(rejects)} reject rule(s) for services without endpoints "
                f"(e.g. {rejects[0].comment or rejects[0].text}) but {', '.join(unhooked)} "
                f"{'does' if len(unhooked) == 1 else 'do'} not jump to it ({_where(ruleset)})",
                "clients of a service with no endpoints hang until they time out instead of being "
                "refused at once",
                f"iptables -t filter -I {unhooked[0]} -m conntrack --ctstate NEW -j {name}  "
                "(kube-proxy restores the jump on its next full sync)"))
    return findings


def check_rule_count(node: NodeState) -> list[Finding]:
    total = sum(ruleset.rule_count for ruleset in _rulesets(node))
    if total <= RULES_AT_SCALE:
        return []
    return [Finding(
        "iptables-rule-count", WARNING, "iptables rules",
        f"{total} iptables rules (more than {RULES_AT_SCALE})",
        "kube-proxy rewrites them with iptables-restore on every full sync and the kernel walks "
        "KUBE-SERVICES linearly: syncs take seconds and service changes arrive late",
        "switch kube-proxy to nftables mode (mode: nftables, Kubernetes >= 1.31), or raise "
        "iptables.minSyncPeriod")]


def _localhost_nodeports(ruleset: Ruleset) -> bool:
    """KUBE-SERVICES sends every LOCAL destination, 127.0.0.1 included, to non-empty KUBE-NODEPORTS."""
    services, nodeports = ruleset.chain("nat", "KUBE-SERVICES"), ruleset.chain("nat", "KUBE-NODEPORTS")
    if services is None or nodeports is None or not nodeports.rules:
        return False
    for rule in services.rules:
        if rule.jump == "KUBE-NODEPORTS" and "--dst-type LOCAL" in rule.text:
            dst = rule.dst
            return not (dst is not None and dst.negated and dst.address.startswith("127."))
    return False


def check_route_localnet(node: NodeState) -> list[Finding]:
    value = node.sysctl("net.ipv4.conf.all.route_localnet")
    if value is None or value == "1":
        return []
    if not any(_localhost_nodeports(r) for r in _rulesets(node) if r.family == "ipv4"):
        return []
    return [Finding(
        "route-localnet", WARNING, "net.ipv4.conf.all.route_localnet",
        f"net.ipv4.conf.all.route_localnet = {value} while KUBE-NODEPORTS also serves 127.0.0.1",
        "the kernel drops packets from 127.0.0.1 DNATed to a pod (martian source): "
        "curl 127.0.0.1:NODEPORT hangs on this node",
        "sysctl -w net.ipv4.conf.all.route_localnet=1 (kube-proxy does with "
        "--iptables-localhost-nodeports), or exclude loopback with --nodeport-addresses")]
