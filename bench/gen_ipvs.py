"""An `ipvsadm -Sn` style rules file: S TCP services (rr, masq) × R real servers each.

Usage: python bench/gen_ipvs.py SERVICES SERVERS > rules.ipvs   (loadable by ipvsadm -R and kpctl ipvs restore)
"""

from __future__ import annotations

import sys


def vip(i: int) -> str:
    return f"10.{96 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}"


def real(i: int, j: int) -> str:
    n = i * 8 + j
    return f"172.{16 + (n >> 16) % 16}.{(n >> 8) & 255}.{n & 255}"


def main() -> None:
    services = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    servers = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    out = []
    for i in range(services):
        out.append(f"-A -t {vip(i)}:80 -s rr")
        for j in range(servers):
            out.append(f"-a -t {vip(i)}:80 -r {real(i, j)}:8080 -m -w 1")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
