"""Read what the kernel has of kube-proxy's modules; load them with modprobe.

Every path is relative to injectable roots so unit tests can hand in prepared trees.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from kpctl.core.modules import (
    parse_ipset_version,
    parse_kernel_config,
    parse_modules_builtin,
    parse_modules_dep,
    parse_proc_modules,
)
from kpctl.model.modules import IpsetTool, KernelFacts


def probe_ipvs_genl() -> bool:
    """Whether the kernel answers for the IPVS generic netlink family."""
    from kpctl.backends.genl import GenlSocket, NetlinkRefusal

    sock = GenlSocket("IPVS")
    try:
        return sock.family_id > 0
    except (NetlinkRefusal, OSError):
        return False
    finally:
        sock.close()


def run_ipset_version(command: str = "ipset") -> IpsetTool:
    try:
        proc = subprocess.run([command, "version"], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return IpsetTool(present=False, error=f"no {command} program in PATH")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return IpsetTool(present=False, error=f"{command} version failed: {exc}")
    tool = parse_ipset_version(proc.stdout + proc.stderr)
    if proc.returncode != 0 and tool.error is None:
        tool = IpsetTool(True, tool.version, tool.protocol, (proc.stderr or proc.stdout).strip().splitlines()[-1])
    return tool


@dataclass
class ModuleProbe:
    proc: str = "/proc"
    lib_modules: str = "/lib/modules"
    boot: str = "/boot"
    release: str | None = None  # default: the running kernel's
    genl_probe: Callable[[], bool] | None = probe_ipvs_genl
    ipset_probe: Callable[[], IpsetTool] = field(default=run_ipset_version)
    modprobe_command: str = "modprobe"

    def kernel_release(self) -> str:
        if self.release:
            return self.release
        text = _read(os.path.join(self.proc, "sys/kernel/osrelease"))
        return text.strip() if text else os.uname().release

    def facts(self) -> KernelFacts:
        release = self.kernel_release()
        module_dir = os.path.join(self.lib_modules, release)
        loaded_text = _read(os.path.join(self.proc, "modules"))
        return KernelFacts(
            release=release,
            loaded=parse_proc_modules(loaded_text) if loaded_text is not None else None,
            builtin=parse_modules_builtin(_read(os.path.join(module_dir, "modules.builtin")) or ""),
            available=self._available(module_dir),
            config=parse_kernel_config(_read(os.path.join(self.boot, f"config-{release}")) or ""),
            proc_net_ip_vs=os.path.exists(os.path.join(self.proc, "net/ip_vs")),
            conntrack_present=os.path.exists(os.path.join(self.proc, "sys/net/netfilter/nf_conntrack_max")),
            ipvs_genl=self.genl_probe() if self.genl_probe else None,
            ipset=self.ipset_probe(),
        )

    def modprobe(self, name: str) -> tuple[bool, str]:
        """Run ``modprobe -- NAME``; (succeeded, modprobe's last line of complaint)."""
        try:
            proc = subprocess.run([self.modprobe_command, "--", name], capture_output=True, text=True,
                                  timeout=60, check=False)
        except FileNotFoundError:
            return False, f"no {self.modprobe_command} program"
        except subprocess.TimeoutExpired:
            return False, "modprobe timed out"
        message = (proc.stderr or proc.stdout).strip().splitlines()
        return proc.returncode == 0, message[-1] if message else f"exit status {proc.returncode}"

    @staticmethod
    def _available(module_dir: str) -> frozenset[str]:
        dep = _read(os.path.join(module_dir, "modules.dep"))
        if dep is not None:
            return parse_modules_dep(dep)
        found: list[str] = []
        for _root, _dirs, files in os.walk(os.path.join(module_dir, "kernel")):
            found.extend(name for name in files if ".ko" in name)
        return parse_modules_dep("\n".join(f"{name}:" for name in found))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
