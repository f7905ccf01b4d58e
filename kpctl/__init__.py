"""kpctl: the kube-proxy data plane of a node, in one tool."""

__version__ = "0.1.0"
