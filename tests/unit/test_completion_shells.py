"""The checked-in completion scripts in the real shells: bash, zsh and fish (Debian packages).

Each test sources completions/<script> with the venv's kpctl first on PATH and asks the shell
what `kpctl ip<TAB>` and `kpctl ipvs add 10.0.0.1:80 -s <TAB>` offer.  bash is driven through
its completion function (COMP_LINE/COMP_WORDS as readline sets them) and interactively on a
pty; zsh interactively on a pty after compinit; fish with `complete -C`.  A missing shell is a
failure, not a skip (scripts/setup.sh installs them).  Live kernel lookups are off
(KPCTL_COMPLETE_LIVE=0); services come from the seed snapshot.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SEED = "examples/seed-ipvs-node.json"
SCHEDULERS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|[\x07\x08\r]")


def _shell(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/setup.sh installs Debian's {name})", pytrace=False)
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    assert (VENV_BIN / "kpctl").exists(), "the venv has no kpctl (run scripts/setup.sh)"
    return {"PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "xterm",
            "KPCTL_COMPLETE_LIVE": "0", "LANG": "C.UTF-8", "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_DATA_HOME": str(tmp_path / "data")}


def _run(argv: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(argv, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


class Pty:
    """An interactive shell on a pseudo-terminal: type text, read what the screen shows."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.seen = ""
        self.syncs = 0

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, *needles: str, timeout: float = 15) -> str:
        """Read until every needle shows up in the (escape-stripped) output since the last call."""
        start, deadline = len(self.seen), time.monotonic() + timeout
        while True:
            screen = ANSI.sub("", self.seen[start:])
            if all(n in screen for n in needles):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout}s for {needles!r}; the shell showed:\n{screen}")
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode(errors="replace")
                except OSError:
                    raise AssertionError(f"the shell exited; it showed:\n{ANSI.sub('', self.seen)}") from None

    def fresh_line(self) -> None:
        """Drop the line being edited and wait until the shell runs a command again."""
        self.syncs += 1
        self.type(f"\x15echo ready$((1+{self.syncs}))\n")
        self.expect(f"ready{self.syncs + 1}\n")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


# ---- bash --------------------------------------------------------------------------------

BASH_DRIVER = r"""
source completions/kpctl.bash
complete -p kpctl
# Complete LINE as readline would: COMP_WORDS split at blanks and at ':' (a COMP_WORDBREAKS
# character), the cursor at the end; print COMPREPLY one per line.
ask() {
    local line=$1 words
    words=$(printf '%s' "$line" | sed 's/:/ : /g')
    read -ra COMP_WORDS <<< "$words"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMP_LINE=$line
    COMP_POINT=${#line}
    COMPREPLY=()
    _kpctl_completion kpctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "== $line"
    printf '%s\n' "${COMPREPLY[@]}"
}
"""


def _bash_answers(env: dict[str, str], *lines: str) -> dict[str, list[str]]:
    script = BASH_DRIVER + "".join(f"ask {_quote(line)}\n" for line in lines)
    out = _run([_shell("bash"), "--norc", "--noprofile", "-c", script], env)
    head, *blocks = out.split("== ")
    assert head.strip() == "complete -o nosort -F _kpctl_completion kpctl"
    answers = {}
    for block in blocks:
        line, *values = block.rstrip("\n").split("\n")
        answers[line] = [v for v in values if v]
    return answers


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def test_bash_completion_function(env: dict[str, str]) -> None:
    answers = _bash_answers(env, "kpctl ip", "kpctl ipvs add 10.0.0.1:80 -s ", "kpctl ipvs list -o ",
                            f"kpctl --snapshot {SEED} ipvs delete 10.254.0.2:", "kpctl ipset create X hash:ip,")
    assert answers["kpctl ip"] == ["ipset", "iptables", "ipvs"]
    assert answers["kpctl ipvs add 10.0.0.1:80 -s "] == SCHEDULERS
    assert answers["kpctl ipvs list -o "] == ["table", "wide", "plain", "json", "yaml", "ipvsadm", "save"]
    # bash replaces the text after the last ':' only, so that is what the function offers
    assert answers[f"kpctl --snapshot {SEED} ipvs delete 10.254.0.2:"] == ["53/tcp", "9153/tcp", "53/udp"]
    assert "ip,port" in answers["kpctl ipset create X hash:ip,"]


def test_bash_interactive_tab(env: dict[str, str]) -> None:
    shell = Pty([_shell("bash"), "--norc", "--noprofile", "-i"], env)
    try:
        shell.type("PS1='$ '; bind 'set bell-style none'; source completions/kpctl.bash; "
                   "kpctl() { echo \"ARGS[$*]\"; }; echo sourced\n")
        shell.expect("sourced\n$ ")
        shell.type("kpctl ip\t\t")
        shell.expect("ipset", "iptables", "ipvs")
        shell.fresh_line()
        shell.type("kpctl ipvs add 10.0.0.1:80 -s \t\t")
        shell.expect(*SCHEDULERS)
        shell.fresh_line()
        # one match: completed in place (bash: across its ':' word break); the kpctl shell
        # function (set up above; completion still runs the real kpctl) prints the final words
        shell.type(f"kpctl --snapshot {SEED} ipvs delete 10.254.0.1\t\n")
        shell.expect(f"ARGS[--snapshot {SEED} ipvs delete 10.254.0.1:443/tcp]\n")
    finally:
        shell.close()


# ---- zsh ---------------------------------------------------------------------------------

def _zsh(env: dict[str, str], setup: str) -> Pty:
    shell = Pty([_shell("zsh"), "-f", "-i"], env)
    shell.type(f"PS1='%% '; unsetopt beep; {setup}; kpctl() {{ echo \"ARGS[$*]\" }}; echo sourced\n")
    shell.expect("sourced")
    return shell


def _zsh_checks(shell: Pty) -> None:
    shell.type("kpctl ip\t")
    shell.expect("ipset", "iptables", "ipvs")
    shell.fresh_line()
    shell.type("kpctl ipvs add 10.0.0.1:80 -s \t")
    screen = shell.expect(*(f"{name} " for name in SCHEDULERS))
    assert "round robin" in screen  # zsh shows the descriptions
    shell.fresh_line()
    # one match: completed in place (bash: across its ':' word break); the kpctl shell
    # function (set up above; completion still runs the real kpctl) prints the final words
    shell.type(f"kpctl --snapshot {SEED} ipvs delete 10.254.0.1\t\n")
    shell.expect(f"ARGS[--snapshot {SEED} ipvs delete 10.254.0.1:443/tcp]\n")


def test_zsh_sourced_after_compinit(env: dict[str, str]) -> None:
    shell = _zsh(env, "autoload -Uz compinit; compinit -u -D; source completions/_kpctl")
    try:
        _zsh_checks(shell)
    finally:
        shell.close()


def test_zsh_from_fpath(env: dict[str, str], tmp_path: Path) -> None:
    functions = tmp_path / "zfunc"
    functions.mkdir()
    shutil.copy(ROOT / "completions" / "_kpctl", functions / "_kpctl")
    shell = _zsh(env, f"fpath=({functions} $fpath); autoload -Uz compinit; compinit -u -D")
    try:
        _zsh_checks(shell)
    finally:
        shell.close()


# ---- fish --------------------------------------------------------------------------------

def _fish_complete(env: dict[str, str], line: str) -> list[tuple[str, str]]:
    out = _run([_shell("fish"), "--no-config", "-c",
                f"source completions/kpctl.fish; complete -C {_quote(line)}"], env)
    return [tuple(entry.split("\t", 1)) if "\t" in entry else (entry, "")  # type: ignore[misc]
            for entry in out.splitlines()]


def test_fish(env: dict[str, str]) -> None:
    assert [value for value, _ in _fish_complete(env, "kpctl ip")] == ["ipset", "iptables", "ipvs"]
    offered = dict(_fish_complete(env, "kpctl ipvs add 10.0.0.1:80 -s "))
    assert sorted(offered) == sorted(SCHEDULERS)
    assert offered["rr"] == "round robin"
    services = [v for v, _ in _fish_complete(env, f"kpctl --snapshot {SEED} ipvs delete 10.254.0.2:")]
    assert services == ["10.254.0.2:53/tcp", "10.254.0.2:53/udp", "10.254.0.2:9153/tcp"]
    flags = [v for v, _ in _fish_complete(env, "kpctl ipvs add 10.0.0.1:80 -b sh-fallback,sh")]
    assert flags == ["sh-fallback,sh-port"]  # commas survive the script's split
