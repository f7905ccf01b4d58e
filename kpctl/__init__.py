"""kpctl: the kube-proxy data plane of a node, in one tool."""

from kpctl.model import precompiled as _precompiled

__version__ = "0.1.0"

_precompiled.install()  # kpctl's dataclasses from precompiled method code: start-up time
