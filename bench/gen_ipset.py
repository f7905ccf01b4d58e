"""An `ipset restore` file: one hash:ip,port set of N members (default 100,000).

Usage: python bench/gen_ipset.py [N] [NAME] > set.restore
"""

from __future__ import annotations

import sys


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    name = sys.argv[2] if len(sys.argv) > 2 else "KPCTL-BENCH"
    out = [f"create {name} hash:ip,port family inet hashsize 65536 maxelem {max(count * 2, 65536)}"]
    protos = ("tcp", "udp")
    for i in range(count):
        ip = f"10.{96 + (i >> 16) % 32}.{(i >> 8) & 255}.{i & 255}"
        out.append(f"add {name} {ip},{protos[i % 2]}:{80 + i % 1000}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
