# Sourced inside the VM by bench/vm.sh: copy what both timed tools run from into the VM's memory
# and point the benchmarks at the copies (BENCH_PY, BENCH_KPCTL; ipvsadm first on PATH).
#
# The VM's root is the host's, over 9p mounted sync and uncached: every stat, open and read of a
# file is a round trip to the host.  `ipvsadm -Ln` opens a handful of files; a Python program
# opens ~150 (the interpreter's modules, click, kpctl), and that, not the program, was most of a
# kpctl run in the VM (an empty-table `ipvs list`: 8.3-9.3 s from the share, 2.9-3.0 s from
# memory, in one boot).  On a node both are on a local disk whose pages stay cached: from memory
# is the closer model.  BENCH_VM_FILES=share times them where they are instead.
#
# Copied: the interpreter (its lib/pythonX.Y without tests, IDLE, tkinter, ensurepip, lib2to3, the
# static library and its own site-packages), the timed install's site-packages (.venv-bench, but
# pip) in their place, kpctl's console script, and ipvsadm.
bench_local_copy() {
    local root=$1 dest=/tmp/kpctl-bench-local venv=$1/.venv-bench
    local py version home exe
    py=$venv/bin/python
    version=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")') || return 1
    home=$("$py" -c 'import sys; print(sys.base_prefix)') || return 1
    exe=$(readlink -f "$py") || return 1
    rm -rf "$dest" && mkdir -p "$dest/py/bin" "$dest/py/lib" "$dest/bin" || return 1
    cp "$exe" "$dest/py/bin/python$version" || return 1
    (cd "$home/lib" && tar cf - --exclude="python$version/test" --exclude="python$version/site-packages" \
        --exclude="python$version/dist-packages" --exclude="python$version/idlelib" \
        --exclude="python$version/tkinter" --exclude="python$version/ensurepip" \
        --exclude="python$version/lib2to3" --exclude="python$version/config-*" "python$version" $(cd "$home/lib" && ls libpython* 2>/dev/null)) \
        | tar -C "$dest/py/lib" -xf - || return 1
    mkdir -p "$dest/py/lib/python$version/site-packages" || return 1
    (cd "$venv/lib/python$version/site-packages" && tar cf - --exclude=./pip --exclude="./pip-*" .) \
        | tar -C "$dest/py/lib/python$version/site-packages" -xf - || return 1
    sed "1s|.*|#!$dest/py/bin/python$version|" "$venv/bin/kpctl" > "$dest/bin/kpctl" && chmod +x "$dest/bin/kpctl" \
        || return 1
    cp "$(command -v ipvsadm)" "$dest/bin/ipvsadm" || return 1
    export LD_LIBRARY_PATH=$dest/py/lib  # a libpython beside the interpreter (pyenv's builds link one)
    export BENCH_PY=$dest/py/bin/python$version BENCH_KPCTL=$dest/bin/kpctl PATH=$dest/bin:$PATH
    "$BENCH_KPCTL" --version >/dev/null && [ "$(command -v ipvsadm)" = "$dest/bin/ipvsadm" ] \
        && "$BENCH_PY" -c "import sys; assert sys.prefix == '$dest/py', sys.prefix"
}
