"""`kpctl ipvs …`: the kernel's IPVS table, at ipvsadm parity."""

from __future__ import annotations

import click


@click.group()
def ipvs() -> None:
    """Virtual services and real servers in the kernel's IPVS table (ipvsadm's job)."""
