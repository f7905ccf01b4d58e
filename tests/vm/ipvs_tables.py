"""Shared material for the IPVS VM tests: a table using every feature, in ipvsadm and kpctl words.

``IPVSADM_BUILD`` builds it with the reference tool; ``KPCTL_BUILD`` builds the same table with
kpctl's commands.  Both must give the same ``ipvsadm -Sn``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.cli_helpers import Outcome, kpctl
from tests.vm.nodes import ipvsadm, sh

# (ipvsadm arguments, kpctl arguments) for one table that uses every feature of issue 2.
_FEATURE_WORDS: list[tuple[str, str]] = [
    # tcp, rr, masq, weights 1 / 65535 / 0, thresholds
    ("-A -t 10.254.0.1:443 -s rr", "ipvs add 10.254.0.1:443 -s rr"),
    ("-a -t 10.254.0.1:443 -r 172.30.1.5:6443 -m -w 1",
     "ipvs add-server 10.254.0.1:443 172.30.1.5:6443 -m -w 1"),
    ("-a -t 10.254.0.1:443 -r 172.30.1.6:6443 -m -w 65535 -x 1000 -y 100",
     "ipvs add-server 10.254.0.1:443 172.30.1.6:6443 -m -w 65535 -x 1000 -y 100"),
    ("-a -t 10.254.0.1:443 -r 172.30.1.7:6443 -m -w 0",
     "ipvs add-server 10.254.0.1:443 172.30.1.7:6443 -m -w 0"),
    # udp with one-packet scheduling
    ("-A -u 10.254.0.10:53 -s wrr -o", "ipvs add 10.254.0.10:53/udp -s wrr --ops"),
    ("-a -u 10.254.0.10:53 -r 172.30.1.8:53 -m -w 2",
     "ipvs add-server 10.254.0.10:53/udp 172.30.1.8:53 -m -w 2"),
    # sctp
    ("--add-service --sctp-service 10.254.0.20:3868 -s lc", "ipvs add 10.254.0.20:3868/sctp -s lc"),
    ("-a --sctp-service 10.254.0.20:3868 -r 172.30.1.9:3868 -m",
     "ipvs add-server 10.254.0.20:3868/SCTP 172.30.1.9:3868 -m"),
    # persistence with timeout and IPv4 netmask; route; every tunnel type and checksum flag
    ("-A -t 10.254.0.2:80 -s wlc -p 600 -M 255.255.255.0",
     "ipvs add 10.254.0.2:80 -s wlc -p 600 -M 255.255.255.0"),
    ("-a -t 10.254.0.2:80 -r 10.0.0.2 -g -w 3", "ipvs add-server 10.254.0.2:80 10.0.0.2 -g -w 3"),
    ("-a -t 10.254.0.2:80 -r 10.0.0.3 -i", "ipvs add-server 10.254.0.2:80 10.0.0.3 -i"),
    ("-a -t 10.254.0.2:80 -r 10.0.0.4 -i --tun-type gue --tun-port 6080 --tun-csum",
     "ipvs add-server 10.254.0.2:80 10.0.0.4 -i --tun-type gue --tun-port 6080 --tun-csum"),
    ("-a -t 10.254.0.2:80 -r 10.0.0.5 -i --tun-type gue --tun-port 6081 --tun-remcsum",
     "ipvs add-server 10.254.0.2:80 10.0.0.5 -i --tun-type gue --tun-port 6081 --tun-remcsum"),
    ("-a -t 10.254.0.2:80 -r 10.0.0.6 -i --tun-type gue --tun-port 65535 --tun-nocsum",
     "ipvs add-server 10.254.0.2:80 10.0.0.6 -i --tun-type gue --tun-port 65535 --tun-nocsum"),
    ("-a -t 10.254.0.2:80 -r 10.0.0.7 -i --tun-type gre --tun-csum",
     "ipvs add-server 10.254.0.2:80 10.0.0.7 -i --tun-type gre --tun-csum"),
    ("-a -t 10.254.0.2:80 -r 10.0.0.8 -i --tun-type gre",
     "ipvs add-server 10.254.0.2:80 10.0.0.8 -i --tun-type gre"),
    # IPv6 service, sh with both flags, persistence with an IPv6 prefix
    ("-A -t [2001:db8::10]:443 -s sh -b sh-fallback,sh-port -p 300 -M 64",
     "ipvs add [2001:db8::10]:443 -s sh -b sh-fallback,sh-port -p 300 -M 64"),
    ("-a -t [2001:db8::10]:443 -r [fd00::1]:8443 -m -w 5",
     "ipvs add-server [2001:db8::10]:443 [fd00::1]:8443 -m -w 5"),
    ("-a -t [2001:db8::10]:443 -r [fd00::2]:8443 -m -w 5 -x 10",
     "ipvs add-server [2001:db8::10]:443 [fd00::2]:8443 -m -w 5 -x 10"),
    ("-A -u [2001:db8::53]:53 -s mh -b mh-fallback,mh-port",
     "ipvs add [2001:db8::53]:53/udp -s mh -b mh-fallback,mh-port"),
    # an IPv6 real server behind an IPv4 service: only tunnelling may mix families
    ("-a -t 10.254.0.2:80 -r [fd00::9]:80 -i --tun-type ipip",
     "ipvs add-server 10.254.0.2:80 [fd00::9]:80 -i --tun-type ipip"),
    # fwmark services, IPv4 and IPv6, with persistence; flag-1..3
    ("-A -f 100 -s lblc", "ipvs add fwmark:100 -s lblc"),
    ("-a -f 100 -r 10.0.0.20 -g", "ipvs add-server fwmark:100 10.0.0.20 -g"),
    ("-A -f 101 -6 -s lblcr -p 3600 -M 96", "ipvs add fwmark:101/ipv6 -s lblcr -p 3600 -M 96"),
    # (ipvsadm takes brackets only with a port)
    ("-a -f 101 -6 -r fd00::20 -g -w 7", "ipvs add-server fwmark:101/ipv6 [fd00::20] -g -w 7"),
    ("-A -f 102 -s dh -o", "ipvs add fwmark:102 -s dh --ops"),
    ("-A -t 10.254.0.45:80 -s wlc -b flag-1,flag-2,flag-3",
     "ipvs add 10.254.0.45:80 -s wlc -b flag-1,flag-2,flag-3"),
    # the SIP persistence engine
    ("-A -u 10.254.0.30:5060 -s rr -p 60 --pe sip", "ipvs add 10.254.0.30:5060/udp -s rr -p 60 --pe sip"),
    ("-a -u 10.254.0.30:5060 -r 172.30.1.30:5060 -m",
     "ipvs add-server 10.254.0.30:5060/udp 172.30.1.30:5060 -m"),
    # the remaining schedulers
    ("-A -t 10.254.0.40:80 -s sed", "ipvs add 10.254.0.40:80 -s sed"),
    ("-A -t 10.254.0.41:80 -s nq", "ipvs add 10.254.0.41:80 -s nq"),
    ("-A -t 10.254.0.42:80 -s fo", "ipvs add 10.254.0.42:80 -s fo"),
    ("-A -t 10.254.0.43:80 -s ovf", "ipvs add 10.254.0.43:80 -s ovf"),
    ("-a -t 10.254.0.43:80 -r 172.30.1.43:80 -m -w 9",
     "ipvs add-server 10.254.0.43:80 172.30.1.43:80 -m -w 9"),
]

FEATURES: list[tuple[list[str], list[str]]] = [(a.split(), k.split()) for a, k in _FEATURE_WORDS]

# Views of `ipvsadm -Ln` and the matching kpctl flags.
VIEWS: list[tuple[list[str], list[str]]] = [
    ([], []),
    (["--stats"], ["--stats"]),
    (["--rate"], ["--rate"]),
    (["--thresholds"], ["--thresholds"]),
    (["--persistent-conn"], ["--persistent-conn"]),
    (["--tun-info"], ["--tun-info"]),
    (["--stats", "--exact"], ["--stats", "--exact"]),
    (["--rate", "--exact"], ["--rate", "--exact"]),
    (["--exact"], ["--exact"]),
]


def build_with_ipvsadm() -> None:
    for args, _ in FEATURES:
        ipvsadm(*args)


def ok(*args: str, input: str | None = None) -> Outcome:
    """Run kpctl in-process and insist on exit 0 (showing stderr when not)."""
    outcome = kpctl(*args, input=input)
    assert outcome.exit_code == 0, f"kpctl {' '.join(args)} -> {outcome.exit_code}: {outcome.stderr} {outcome.exception!r}"
    return outcome


def refused(expected_exit: int, *args: str, naming: str | None = None, input: str | None = None) -> Outcome:
    """kpctl must exit ``expected_exit`` with one `kpctl: error:` line (naming ``naming``), table unchanged."""
    before = ipvsadm("-Sn")
    outcome = kpctl(*args, input=input)
    assert outcome.exception is None, f"kpctl {' '.join(args)} raised {outcome.exception!r}"
    assert outcome.exit_code == expected_exit, (
        f"kpctl {' '.join(args)}: exit {outcome.exit_code}, wanted {expected_exit}; stderr: {outcome.stderr}")
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kpctl: error: "), outcome.stderr
    if naming is not None:
        assert naming in lines[0], f"{naming!r} not named in {lines[0]!r}"
    assert ipvsadm("-Sn") == before, f"kpctl {' '.join(args)} changed the table"
    return outcome


def module_loaded(name: str) -> bool:
    return os.path.isdir(f"/sys/module/{name}")


@contextmanager
def blocked_module(name: str) -> Iterator[None]:
    """Make kernel module ``name`` unloadable for the duration (an `install … /bin/false` rule).

    The kernel's request_module() runs modprobe, which obeys /etc/modprobe.d (an overlay in
    the VM), so a service naming the scheduler meets ENOENT as on a node without the module.
    """
    rule = f"/etc/modprobe.d/kpctl-test-block-{name}.conf"
    if module_loaded(name):
        sh("modprobe", "-r", name)
    with open(rule, "w", encoding="ascii") as handle:
        handle.write(f"install {name} /bin/false\n")
    try:
        assert subprocess.run(["modprobe", name], capture_output=True, check=False).returncode != 0
        yield
    finally:
        os.unlink(rule)
