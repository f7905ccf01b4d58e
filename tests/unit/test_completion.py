"""`kpctl completion`: the checked-in scripts never drift, and what completion offers.

Completion is driven in-process through click's protocol (``_KPCTL_COMPLETE=…_complete``);
live kernel lookups are switched off (KPCTL_COMPLETE_LIVE=0) or read a --snapshot, so this
stays pure.  tests/unit/test_completion_shells.py runs the scripts in the real shells.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from kpctl.cli import completers
from kpctl.cli.main import cli
from tests.cli_helpers import Outcome, _runner, kpctl

ROOT = Path(__file__).resolve().parents[2]
SEED = str(ROOT / "examples" / "seed-ipvs-node.json")
FILES = {"bash": "kpctl.bash", "zsh": "_kpctl", "fish": "kpctl.fish"}


@pytest.fixture(autouse=True)
def _no_live_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KPCTL_COMPLETE_LIVE", "0")


def ask(env: dict[str, str]) -> Outcome:
    """Run kpctl as the shell does when completing (prog name kpctl, instruction in env)."""
    result = _runner().invoke(cli, [], env=env, prog_name="kpctl")  # stderr apart on every click
    return Outcome(result.exit_code, result.stdout, result.stderr, None)


def complete(line: str, shell: str = "bash") -> list[str]:
    """The values kpctl offers for LINE (cursor at its end), through the shell's protocol."""
    if shell == "bash":
        env = {"_KPCTL_COMPLETE": "bash_complete", "COMP_LINE": line, "COMP_POINT": str(len(line)),
               "COMP_WORDS": line, "COMP_CWORD": "0"}
        out = ask(env)
        assert out.exit_code == 0, out.stderr
        assert out.stderr == ""
        return [entry.split(",", 1)[1] for entry in out.stdout.splitlines() if entry]
    words = line.split(" ")
    env = {"_KPCTL_COMPLETE": "zsh_complete", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    out = ask(env)
    assert out.exit_code == 0, out.stderr
    lines = out.stdout.splitlines()
    return [lines[i + 1].replace("\\:", ":") for i in range(0, len(lines) - 2, 3)]


@pytest.mark.parametrize("shell", sorted(FILES))
def test_checked_in_script_is_the_generated_one(shell: str) -> None:
    out = kpctl("completion", shell)
    assert out.exit_code == 0
    checked_in = (ROOT / "completions" / FILES[shell]).read_text()
    assert out.stdout == checked_in, f"completions/{FILES[shell]} is stale: run scripts/gen-completions.sh"


@pytest.mark.parametrize("shell", sorted(FILES))
def test_source_instruction_prints_the_same_script(shell: str) -> None:
    out = ask({"_KPCTL_COMPLETE": f"{shell}_source"})
    assert out.exit_code == 0
    assert out.stdout == kpctl("completion", shell).stdout


def test_unknown_shell_is_usage_error() -> None:
    out = kpctl("completion", "powershell")
    assert out.exit_code == 2
    assert "powershell" in out.stderr


def test_top_level_offers_lazy_groups() -> None:
    assert complete("kpctl ip") == ["ipset", "iptables", "ipvs"]
    offered = complete("kpctl ")
    for group in ("completion", "doctor", "ipset", "iptables", "ipvs", "modules", "snapshot", "trace", "vip"):
        assert group in offered


def test_subcommands_and_flags() -> None:
    assert "add-server" in complete("kpctl ipvs a")
    assert set(complete("kpctl ipvs list --st")) == {"--stats"}
    assert "--scheduler" in complete("kpctl ipvs add 10.0.0.1:80 --")


def test_scheduler_names() -> None:
    offered = complete("kpctl ipvs add 10.0.0.1:80 -s ")
    assert offered[:4] == ["rr", "wrr", "lc", "wlc"] and "mh" in offered and len(offered) == 14
    assert complete("kpctl ipvs edit 10.0.0.1:80 --scheduler w") == ["wrr", "wlc"]
    assert complete("kpctl modules check --scheduler lb") == ["lblc", "lblcr"]


def test_output_choices() -> None:
    assert complete("kpctl ipvs list -o ") == ["table", "wide", "plain", "json", "yaml", "ipvsadm", "save"]
    assert complete("kpctl ipvs list --output=j") == ["json"]


def test_ipset_types_complete_after_the_colon_in_bash() -> None:
    # bash replaces only the text after ':' (a word break), so that part is what we send back
    assert complete("kpctl ipset create KUBE-X hash:ip,port,") == ["ip,port,ip", "ip,port,net"]
    zsh = complete("kpctl ipset create KUBE-X hash:ip,port,", shell="zsh")
    assert zsh == ["hash:ip,port,ip", "hash:ip,port,net"]


def test_services_from_snapshot_with_colon_trimming() -> None:
    assert complete(f"kpctl --snapshot {SEED} ipvs delete 10.254.0.2:") == ["53/tcp", "9153/tcp", "53/udp"]
    assert complete(f"kpctl --snapshot {SEED} trace 10.254.0.1", shell="zsh") == ["10.254.0.1:443/tcp"]
    assert complete(f"kpctl --snapshot {SEED} ipvs add ") == []  # a new service: nothing to offer


def test_servers_of_the_named_service_from_snapshot() -> None:
    offered = complete(f"kpctl --snapshot {SEED} ipvs delete-server 10.254.199.160:8080 ", shell="zsh")
    assert len(offered) == 2 and all(":" in server for server in offered)


def test_ipset_names_from_snapshot() -> None:
    offered = complete(f"kpctl --snapshot {SEED} ipset list KUBE-C")
    assert "KUBE-CLUSTER-IP" in offered
    assert complete(f"kpctl --snapshot {SEED} ipset create ") == []


def test_live_lookups_need_root_and_never_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KPCTL_COMPLETE_LIVE")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert complete("kpctl ipvs delete ") == []
    assert complete("kpctl ipset list ") == []


def test_broken_snapshot_offers_nothing_and_prints_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert complete(f"kpctl --snapshot {bad} ipvs delete ") == []
    assert complete(f"kpctl --snapshot {tmp_path}/missing.json ipset list ") == []


def test_doctor_check_ids_and_trace_origins() -> None:
    assert "vip-missing" in complete("kpctl doctor --check vip")
    assert complete("kpctl trace 10.0.0.1:80 --from ") == ["node", "pod:", "external:"]


def test_sched_flags_complete_the_last_list_element() -> None:
    offered = complete("kpctl ipvs add 10.0.0.1:80 -s sh -b sh-fallback,sh")
    assert offered == ["sh-fallback,sh-port"]


def _all_commands(command: click.Command, path: tuple[str, ...] = ()) -> dict[str, click.Command]:
    found = {" ".join(path): command}
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            found.update(_all_commands(sub, (*path, name)))
    return found


def test_every_provider_names_a_real_parameter() -> None:
    """A renamed option must not silently lose its completion."""
    commands = _all_commands(cli)
    for scope, param in completers.PROVIDERS:
        assert scope in commands, f"no command {scope!r}"
        under = [c for path, c in commands.items() if path == scope or path.startswith(scope + " ") or not scope]
        assert any(p.name == param for c in under for p in c.params), f"no parameter {param!r} under {scope!r}"
