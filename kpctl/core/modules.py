"""Which kernel modules kube-proxy's IPVS mode needs, and whether this node has them.

The required set follows kube-proxy: ip_vs, ip_vs_rr, ip_vs_wrr, ip_vs_sh and the
connection tracker, which is ``nf_conntrack_ipv4`` before kernel 4.19 and
``nf_conntrack`` from 4.19 on (the IPv4 tracker was folded into it), plus
``ip_vs_<scheduler>`` for the configured scheduler.  kube-proxy looked for built-in
modules by a substring match on ``modules.builtin`` and, without ``/proc/modules``,
by ``CONFIG_<NAME>=y``; here both are matched exactly by module name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from kpctl.errors import InvalidInput
from kpctl.model.ipvs import SCHEDULERS
from kpctl.model.modules import (
    AVAILABLE,
    BUILTIN,
    IMPOSSIBLE,
    LOADED,
    MISSING,
    NOT_READY,
    READY,
    UNKNOWN,
    IpsetTool,
    KernelFacts,
    ModulesReport,
    ModuleStatus,
    RequiredModule,
)

CONNTRACK_RENAMED_IN = (4, 19)
DEFAULT_SCHEDULER = "rr"
MIN_IPSET_VERSION = (6, 0)
IPVS_CORE = "ip_vs"
_MODULE_SUFFIX = re.compile(r"\.ko(\.(xz|gz|zst))?$")


def parse_kernel_version(release: str) -> tuple[int, int, int]:
    """``6.1.0-56-amd64`` -> (6, 1, 0); ``4.14`` -> (4, 14, 0)."""
    match = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not match:
        raise InvalidInput(f"cannot parse kernel version {release!r}")
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def validate_scheduler(name: str) -> str:
    lowered = name.strip().lower()
    if lowered not in SCHEDULERS:
        raise InvalidInput(f"unknown IPVS scheduler {name!r}", "one of: " + ", ".join(SCHEDULERS))
    return lowered


def scheduler_from_config(text: str, source: str = "config") -> str | None:
    """The ``ipvs.scheduler`` of a KubeProxyConfiguration YAML document (None when unset)."""
    import yaml  # only for a config file

    from kpctl.core.yaml_load import safe_load

    try:
        document: Any = safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if document is None:
        return None
    if not isinstance(document, dict):
        raise InvalidInput(f"{source} is not a KubeProxyConfiguration (top level is not a mapping)")
    kind = document.get("kind")
    if kind is not None and kind != "KubeProxyConfiguration":
        raise InvalidInput(f"{source} has kind {kind!r}, expected KubeProxyConfiguration")
    ipvs = document.get("ipvs") or {}
    if not isinstance(ipvs, dict):
        raise InvalidInput(f"{source}: ipvs is not a mapping")
    scheduler = ipvs.get("scheduler")
    if scheduler in (None, ""):
        return None
    return validate_scheduler(str(scheduler))


def required_modules(version: tuple[int, int, int], schedulers: Iterable[tuple[str, str]] = ()) -> tuple[RequiredModule, ...]:
    """kube-proxy's required set for ``version``, plus ``(scheduler, why)`` pairs asked for."""
    conntrack = (
        RequiredModule("nf_conntrack", "connection tracking (nf_conntrack_ipv4 before kernel 4.19)")
        if version[:2] >= CONNTRACK_RENAMED_IN
        else RequiredModule("nf_conntrack_ipv4", "IPv4 connection tracking (renamed nf_conntrack in 4.19)")
    )
    required = [
        RequiredModule("ip_vs", "the IPVS core"),
        RequiredModule("ip_vs_rr", "rr scheduler (kube-proxy's default)"),
        RequiredModule("ip_vs_wrr", "wrr scheduler (in kube-proxy's required set)"),
        RequiredModule("ip_vs_sh", "sh scheduler (in kube-proxy's required set)"),
        conntrack,
    ]
    names = {m.name for m in required}
    for scheduler, why in schedulers:
        name = "ip_vs_" + validate_scheduler(scheduler)
        if name not in names:
            required.append(RequiredModule(name, f"{scheduler} scheduler ({why})"))
            names.add(name)
    return tuple(required)


def module_name(path_or_name: str) -> str:
    """``kernel/net/netfilter/ipvs/ip_vs.ko.xz`` or ``ip-vs`` -> ``ip_vs``."""
    base = path_or_name.strip().rsplit("/", 1)[-1]
    return _MODULE_SUFFIX.sub("", base).replace("-", "_")


def parse_proc_modules(text: str) -> frozenset[str]:
    return frozenset(module_name(line.split()[0]) for line in text.splitlines() if line.strip())


def parse_modules_builtin(text: str) -> frozenset[str]:
    return frozenset(module_name(line) for line in text.splitlines() if line.strip())


def parse_modules_dep(text: str) -> frozenset[str]:
    """Module names from ``modules.dep`` (``path.ko[.xz]: deps…``)."""
    return frozenset(module_name(line.split(":", 1)[0]) for line in text.splitlines() if ":" in line)


def parse_kernel_config(text: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            config[key] = value.strip().strip('"')
    return config


def config_symbol(module: str) -> str:
    return "CONFIG_" + module.upper()


def parse_ipset_version(text: str) -> IpsetTool:
    """``ipset v7.17, protocol version: 7`` -> IpsetTool(present, "7.17", 7)."""
    match = re.search(r"v(\d+(?:\.\d+)*)", text)
    if not match:
        return IpsetTool(present=True, error=f"unrecognised ipset version output {text.strip()!r}")
    protocol = re.search(r"protocol version:\s*(\d+)", text)
    return IpsetTool(present=True, version=match.group(1), protocol=int(protocol.group(1)) if protocol else None)


def ipset_new_enough(tool: IpsetTool) -> bool:
    if not tool.present or not tool.version:
        return False
    parts = tuple(int(p) for p in tool.version.split(".")[:2])
    return parts >= MIN_IPSET_VERSION


def module_state(name: str, facts: KernelFacts, exposed: Mapping[str, str]) -> tuple[str, str]:
    """(state, evidence) of one module on this node."""
    config_path = f"/boot/config-{facts.release}"
    symbol = config_symbol(name)
    if facts.loaded is not None and name in facts.loaded:
        return LOADED, "/proc/modules"
    if name in facts.builtin:
        return BUILTIN, "modules.builtin"
    if facts.config.get(symbol) == "y":
        return BUILTIN, f"{config_path}: {symbol}=y"
    if name in exposed:
        return BUILTIN, exposed[name]
    if facts.loaded is not None:
        if name in facts.available:
            return AVAILABLE, f"/lib/modules/{facts.release}"
        return MISSING, f"not loaded, not built in, no module file under /lib/modules/{facts.release}"
    # No module support: only what is compiled in counts.
    if name == IPVS_CORE:
        return MISSING, "no /proc/net/ip_vs and no IPVS genetlink family"
    if facts.config:
        value = facts.config.get(symbol)
        return MISSING, f"{config_path}: {symbol}={value}" if value else f"{config_path}: {symbol} not set"
    return UNKNOWN, f"no /proc/modules and no {config_path} to tell"


def kernel_exposed(facts: KernelFacts) -> dict[str, str]:
    """Modules whose presence the running kernel itself shows, loaded or built in."""
    exposed: dict[str, str] = {}
    if facts.proc_net_ip_vs:
        exposed[IPVS_CORE] = "/proc/net/ip_vs"
    elif facts.ipvs_genl:
        exposed[IPVS_CORE] = "IPVS genetlink family"
    if facts.conntrack_present:
        exposed["nf_conntrack"] = "/proc/sys/net/netfilter/nf_conntrack_max"
    return exposed


def assess(facts: KernelFacts, required: Iterable[RequiredModule], changes: Mapping[str, str] | None = None) -> ModulesReport:
    """The per-module states and the verdict; ``changes`` records what ``--load`` did."""
    changes = changes or {}
    exposed = kernel_exposed(facts)
    statuses = []
    for module in required:
        state, evidence = module_state(module.name, facts, exposed)
        statuses.append(ModuleStatus(module.name, state, module.reason, evidence, changes.get(module.name, "")))
    verdict, advice = _verdict(facts, statuses)
    summary = _summary(verdict, statuses, facts)
    return ModulesReport(
        release=facts.release,
        modules_supported=facts.modules_supported,
        modules=tuple(statuses),
        ipset=facts.ipset,
        ipvs_genl=facts.ipvs_genl,
        proc_net_ip_vs=facts.proc_net_ip_vs,
        verdict=verdict,
        summary=summary,
        advice=tuple(advice),
    )


def _summary(verdict: str, statuses: list[ModuleStatus], facts: KernelFacts) -> str:
    if verdict == READY:
        return "kube-proxy can run in IPVS mode here"
    if verdict == IMPOSSIBLE:
        return "no IPVS in this kernel: kube-proxy cannot use IPVS mode"
    parts = []
    for state, label in ((AVAILABLE, "not loaded"), (MISSING, "missing"), (UNKNOWN, "unknown")):
        names = [s.name for s in statuses if s.state == state]
        if names:
            parts.append(f"{label}: {' '.join(names)}")
    if not ipset_new_enough(facts.ipset):
        parts.append("ipset >= 6.0 needed")
    if facts.ipvs_genl is False and not parts:
        parts.append("IPVS netlink family silent")
    return "; ".join(parts)


def modules_to_load(report: ModulesReport) -> list[str]:
    return [m.name for m in report.modules if m.state == AVAILABLE]


def _verdict(facts: KernelFacts, statuses: list[ModuleStatus]) -> tuple[str, list[str]]:
    by_state: dict[str, list[str]] = {}
    for status in statuses:
        by_state.setdefault(status.state, []).append(status.name)
    advice: list[str] = []
    core = next(s for s in statuses if s.name == IPVS_CORE)
    if core.state == MISSING:
        why = "no CONFIG_IP_VS" + ("" if facts.modules_supported else ", no module support")
        advice.append(f"{why}: boot a kernel with IPVS, or run kube-proxy --proxy-mode=iptables|nftables")
        return IMPOSSIBLE, advice
    if by_state.get(AVAILABLE):
        names = " ".join(by_state[AVAILABLE])
        advice.append(f"kpctl modules check --load (modprobe -a {names}); persist in /etc/modules-load.d/")
    if by_state.get(MISSING):
        advice.append("install the kernel's extra modules package for " + ", ".join(by_state[MISSING]))
    if by_state.get(UNKNOWN):
        advice.append(f"no /boot/config-{facts.release}: cannot tell if " + ", ".join(by_state[UNKNOWN])
                      + " are built in")
    if not ipset_new_enough(facts.ipset):
        detail = facts.ipset.error or (f"ipset {facts.ipset.version} is older than 6.0" if facts.ipset.present
                                       else "no ipset program")
        advice.append(f"{detail}: install ipset >= 6.0 (kube-proxy runs it)")
    genl_silent = facts.ipvs_genl is False and core.state in (LOADED, BUILTIN)
    if genl_silent:
        advice.append("ip_vs is present but the IPVS generic netlink family does not answer")
    problems = (by_state.get(AVAILABLE) or by_state.get(MISSING) or by_state.get(UNKNOWN)
                or not ipset_new_enough(facts.ipset) or genl_silent)
    return (NOT_READY if problems else READY), advice
