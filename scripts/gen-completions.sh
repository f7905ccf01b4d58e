#!/usr/bin/env bash
# Regenerate the checked-in completion scripts in completions/ from the click definition
# (`kpctl completion SHELL`). tests/unit/test_completion.py fails when they drift.
#
# Usage: scripts/gen-completions.sh [--check]   (--check: change nothing, exit 1 if stale)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
KPCTL=${KPCTL:-.venv/bin/kpctl}
CHECK=0
case "${1:-}" in
    --check) CHECK=1 ;;
    "") ;;
    *) echo "gen-completions: unknown option $1" >&2; exit 2 ;;
esac

status=0
for pair in bash:kpctl.bash zsh:_kpctl fish:kpctl.fish; do
    shell=${pair%%:*}
    file=completions/${pair#*:}
    text=$("$KPCTL" completion "$shell"; echo x)  # the x keeps trailing newlines
    text=${text%x}
    if [ "$CHECK" = 1 ]; then
        if [ "$(cat "$file" 2>/dev/null; echo x)" != "${text}x" ]; then
            echo "gen-completions: $file is stale (run scripts/gen-completions.sh)" >&2
            status=1
        fi
    else
        printf '%s' "$text" >"$file"
    fi
done
exit $status
