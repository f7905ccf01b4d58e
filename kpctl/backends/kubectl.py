"""Where `--services`/`--kubectl` read Kubernetes Services and EndpointSlices from.

``--services FILE`` (or ``-`` for stdin) is the saved output of
``kubectl get svc,endpointslices -A -o json``; ``--kubectl`` runs exactly that command.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

from kpctl.core.k8s_names import K8sNames, parse_kubectl_json
from kpctl.errors import KpctlError, NotFound

KUBECTL_ARGS: tuple[str, ...] = ("get", "services,endpointslices.discovery.k8s.io", "--all-namespaces", "-o", "json")
TIMEOUT_SECONDS = 60


def read_services_file(path: str) -> K8sNames:
    if path == "-":
        return parse_kubectl_json(sys.stdin.read(), "stdin")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise NotFound(f"--services {path!r}: no such file") from None
    except IsADirectoryError:
        raise NotFound(f"--services {path!r}: is a directory") from None
    return parse_kubectl_json(text, path)


def run_kubectl(program: str = "kubectl") -> K8sNames:
    """Run ``kubectl get services,endpointslices -A -o json`` with the caller's kubeconfig."""
    exe = shutil.which(program)
    if exe is None:
        raise NotFound(f"{program} is not installed", "save its output elsewhere and use --services FILE")
    try:
        proc = subprocess.run([exe, *KUBECTL_ARGS], capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
                              check=False)
    except subprocess.TimeoutExpired:
        raise KpctlError(f"{program} did not answer within {TIMEOUT_SECONDS}s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise KpctlError(f"{program} {' '.join(KUBECTL_ARGS)} failed (exit {proc.returncode}): {last}")
    return parse_kubectl_json(proc.stdout, program)
