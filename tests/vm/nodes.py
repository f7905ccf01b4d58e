"""Build a kube-proxy-shaped node inside the VM: the VM itself is the node, pods are network
namespaces joined by veth pairs and routed like calico (no bridge).

    node = Node()                          # dummy node0 with NODE_IP and a default route
    web1 = node.add_pod("172.30.22.4")     # namespace + veth, IP/32, default via 169.254.1.1
    web1.serve(8080)                       # socat: answers "<pod name> <client address>"
    node.add_vip("10.254.0.1")             # on the dummy kube-ipvs0, as kube-proxy does
    ipvsadm("-A", "-t", "10.254.0.1:443", "-s", "rr")
    ipvsadm("-a", "-t", "10.254.0.1:443", "-r", "172.30.22.4:8080", "-m")
    node.request("10.254.0.1", 443)        # -> "web-… 192.168.10.10"  (from the node itself)
    client.request("10.254.0.1", 443)      # from a pod
    node.cleanup()                         # the `node` fixture does this

Facts that cost time to find (see shared/ENVIRONMENT.md): proxy_arp only answers when the
node has a route to 169.254.1.1, hence node0 and its default route; IPVS NAT needs
net.ipv4.vs.conntrack=1 for masquerade; a pod reaching itself through a service (hairpin)
needs masquerade (``node.masquerade_pod_traffic()``); the first exec of a program in the VM
is slow, so probes retry.
Everything here shells out to the real tools: no pyroute2, so it cannot hide kpctl bugs.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field

NODE_IP = "192.168.10.10"
NODE_GATEWAY = "192.168.10.1"
CLUSTER_CIDR = "172.30.0.0/16"
POD_GATEWAY = "169.254.1.1"
VIP_DEVICE = "kube-ipvs0"
NODE_DEVICE = "node0"
NAT_TABLE = "kpctl_test_nat"  # nft table masquerade_pod_traffic() creates

_pod_numbers = itertools.count(1)


def sh(*cmd: str, check: bool = True, input: str | None = None, timeout: float = 120,
       netns: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a program (inside NETNS when given); with check, raise with its stderr on failure."""
    argv = ["ip", "netns", "exec", netns, *cmd] if netns else list(cmd)
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed (exit {proc.returncode}): {' '.join(argv)}\n"
                             f"stdout: {proc.stdout.strip()}\nstderr: {proc.stderr.strip()}")
    return proc


def ipvsadm(*args: str, check: bool = True, input: str | None = None) -> str:
    """Run the reference ipvsadm and return its stdout."""
    return sh("ipvsadm", *args, check=check, input=input).stdout


def write_sysctl(name: str, value: str) -> str:
    """Set a sysctl through /proc/sys (no exec); return the previous value."""
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path, encoding="ascii") as handle:
        old = handle.read().strip()
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)
    return old


def _ip_batch(commands: list[str], netns: str | None = None) -> None:
    args = ["ip"] + (["-n", netns] if netns else []) + ["-batch", "-"]
    sh(*args, input="\n".join(commands) + "\n")


def _wait_listening(netns: str | None, port: int, proto: str, deadline_s: float = 30) -> None:
    flag = "-Hltn" if proto == "tcp" else "-Hlun"
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        out = sh("ss", flag, f"sport = :{port}", netns=netns, check=False).stdout
        if out.strip():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {proto} server listening on port {port} in {netns or 'the node'} after {deadline_s}s")


def _request(netns: str | None, addr: str, port: int, proto: str, payload: str, retries: int,
             timeout: float | None) -> str:
    # A TCP probe returns as soon as the server closes, so a long wait costs nothing when things
    # work and rides out a loaded emulated VM; UDP has no close, so its wait is paid every time.
    if timeout is None:
        timeout = 15 if proto == "tcp" else 5
    target = f"[{addr}]" if ":" in addr else addr
    if proto == "tcp":
        address = f"TCP:{target}:{port},connect-timeout={timeout}"
    elif proto == "udp":
        address = f"UDP:{target}:{port}"
    else:
        raise ValueError(f"unsupported protocol {proto!r}")
    last = ""
    for _ in range(retries):
        # -t: after sending (stdin EOF) wait this long for the answer; socat's default 0.5 s is
        # shorter than a fork+exec of the server's reply in the emulated VM.
        proc = sh("socat", f"-t{timeout}", f"-T{timeout}", "-", address, input=payload or "ping\n", netns=netns,
                  check=False, timeout=timeout * 3 + 10)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
        last = f"exit {proc.returncode}: {proc.stderr.strip()}"
        time.sleep(0.5)
    raise AssertionError(f"no answer from {addr}:{port}/{proto} from {netns or 'the node'} after {retries} tries ({last})")


@dataclass
class Server:
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@dataclass
class Pod:
    """A pod: its own network namespace, eth0 with IP/32, default route via 169.254.1.1."""

    name: str  # the namespace name
    ip: str
    host_veth: str
    servers: list[Server] = field(default_factory=list)

    def exec(self, *cmd: str, check: bool = True, input: str | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return sh(*cmd, check=check, input=input, timeout=timeout, netns=self.name)

    def serve(self, port: int, proto: str = "tcp", reply: str | None = None) -> Server:
        """Start a socat server in the pod answering "REPLY CLIENT_ADDRESS" (REPLY: pod name)."""
        listen = {"tcp": f"TCP-LISTEN:{port},fork,reuseaddr", "udp": f"UDP-RECVFROM:{port},fork"}[proto]
        answer = f"SYSTEM:echo {reply or self.name} $SOCAT_PEERADDR"
        process = subprocess.Popen(["ip", "netns", "exec", self.name, "socat", listen, answer],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        server = Server(process)
        self.servers.append(server)
        _wait_listening(self.name, port, proto)
        return server

    def request(self, addr: str, port: int, proto: str = "tcp", payload: str = "",
                retries: int = 3, timeout: float | None = None) -> str:
        """Connect from the pod; return the server's answer (raises when nobody answers)."""
        return _request(self.name, addr, port, proto, payload, retries, timeout)


@dataclass
class Node:
    """The VM's own network namespace shaped like a kube-proxy IPVS node."""

    ip: str = NODE_IP
    pods: list[Pod] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    _sysctls: dict[str, str] = field(default_factory=dict)
    _links: list[str] = field(default_factory=list)
    _nat_table: bool = False

    def __post_init__(self) -> None:
        try:
            # The node needs a default route or proxy_arp on the veths never answers the pods.
            self._add_link(NODE_DEVICE, "dummy")
            _ip_batch([f"address add {self.ip}/24 dev {NODE_DEVICE}",
                       f"link set {NODE_DEVICE} up",
                       f"route replace default via {NODE_GATEWAY} dev {NODE_DEVICE} onlink"])
            self.sysctl("net.ipv4.ip_forward", "1")
            if os.path.exists("/proc/sys/net/ipv4/vs/conntrack"):
                self.sysctl("net.ipv4.vs.conntrack", "1")
        except BaseException:
            self.cleanup()
            raise

    def _add_link(self, name: str, kind: str) -> None:
        if os.path.exists(f"/sys/class/net/{name}"):
            raise AssertionError(f"link {name} already exists: a previous test did not clean up")
        sh("ip", "link", "add", name, "type", kind)
        self._links.append(name)

    def sysctl(self, name: str, value: str) -> None:
        """Set a sysctl; cleanup() puts the old value back."""
        old = write_sysctl(name, value)
        self._sysctls.setdefault(name, old)

    def add_pod(self, ip: str, name: str | None = None) -> Pod:
        number = next(_pod_numbers)
        netns = name or f"kpctl-pod-{number}"
        host_veth = f"calikp{number}"
        sh("ip", "netns", "add", netns)
        pod = Pod(netns, ip, host_veth)
        self.pods.append(pod)
        sh("ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip_batch(["link set lo up",
                   f"address add {ip}/32 dev eth0",
                   "link set eth0 up",
                   f"route add {POD_GATEWAY} dev eth0 scope link",
                   f"route add default via {POD_GATEWAY} dev eth0"], netns=netns)
        _ip_batch([f"link set {host_veth} up", f"route add {ip}/32 dev {host_veth}"])
        self.sysctl(f"net.ipv4.conf.{host_veth}.proxy_arp", "1")
        return pod

    def add_vip(self, addr: str, dev: str = VIP_DEVICE) -> None:
        """Put a service address on the dummy device (created on first use), as kube-proxy does."""
        if not os.path.exists(f"/sys/class/net/{dev}"):
            self._add_link(dev, "dummy")
        prefix = "128" if ":" in addr else "32"
        sh("ip", "address", "add", f"{addr}/{prefix}", "dev", dev)

    def masquerade_pod_traffic(self, cidr: str = CLUSTER_CIDR) -> None:
        """SNAT traffic leaving towards pods to the node (kube-proxy's masquerade, incl. hairpin)."""
        ruleset = (f"table ip {NAT_TABLE} {{\n"
                   "  chain postrouting {\n"
                   "    type nat hook postrouting priority 100; policy accept;\n"
                   f"    ip daddr {cidr} masquerade\n"
                   "  }\n}\n")
        sh("nft", "-f", "-", input=ruleset)
        self._nat_table = True

    def serve(self, port: int, proto: str = "tcp", reply: str = "node") -> Server:
        """A socat server on the node itself (e.g. an apiserver-like real server on NODE_IP)."""
        listen = {"tcp": f"TCP-LISTEN:{port},fork,reuseaddr", "udp": f"UDP-RECVFROM:{port},fork"}[proto]
        process = subprocess.Popen(["socat", listen, f"SYSTEM:echo {reply} $SOCAT_PEERADDR"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        server = Server(process)
        self.servers.append(server)
        _wait_listening(None, port, proto)
        return server

    def request(self, addr: str, port: int, proto: str = "tcp", payload: str = "",
                retries: int = 3, timeout: float | None = None) -> str:
        """Connect from the node itself; return the server's answer."""
        return _request(None, addr, port, proto, payload, retries, timeout)

    def cleanup(self) -> None:
        """Undo everything this node created; safe to call twice."""
        for server in self.servers + [s for pod in self.pods for s in pod.servers]:
            server.stop()
        self.servers.clear()
        for pod in self.pods:
            pod.servers.clear()
            # The host end first: deleting a veth removes the pair and the pod's /32 route at once,
            # while a deleted namespace's devices go later (the next pod on the same IP then met
            # "RTNETLINK answers: File exists" for its route).
            sh("ip", "link", "delete", pod.host_veth, check=False)
            sh("ip", "netns", "delete", pod.name, check=False)
        self.pods.clear()
        if self._nat_table:
            sh("nft", "delete", "table", "ip", NAT_TABLE, check=False)
            self._nat_table = False
        for link in reversed(self._links):
            sh("ip", "link", "delete", link, check=False)
        self._links.clear()
        for name, old in self._sysctls.items():
            if os.path.exists("/proc/sys/" + name.replace(".", "/")):
                write_sysctl(name, old)
        self._sysctls.clear()
