"""kpctl's dataclasses built from precompiled method code are the standard library's own classes.

kpctl.model.precompiled hands ``dataclasses`` precompiled code instead of compiling method texts
at import (start-up time, issue 6).  These tests hold it to "nothing changes but speed":
- the precompiled code of every text is the code ``exec`` makes of that very text;
- in a fresh interpreter, every method of every kpctl dataclass (code, closure values, defaults,
  annotations, names) is the same as with the plain standard library;
- instances of model classes built both ways behave alike on many inputs (hypothesis);
- a text without precompiled code is compiled as before; other packages are never touched;
- the files are current for the modules on the start-up paths (else: slower, not wrong).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import pkgutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpctl.model import precompiled

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "kpctl" / "model" / "_precompiled"
# Modules whose classes must all have precompiled code: all of kpctl (a stale file would only cost
# start-up time, so this test is what notices it); regenerate with `python -m kpctl.model.precompiled_gen`.
GUARDED = ("kpctl.",)


def _same_code(a: types.CodeType, b: types.CodeType) -> bool:
    """Same bytecode, names, constants (nested code compared alike); file and line may differ."""
    if len(a.co_consts) != len(b.co_consts):
        return False
    for x, y in zip(a.co_consts, b.co_consts):
        if isinstance(x, types.CodeType) or isinstance(y, types.CodeType):
            if not (isinstance(x, types.CodeType) and isinstance(y, types.CodeType) and _same_code(x, y)):
                return False
        elif type(x) is not type(y) or x != y:
            return False
    attributes = ("co_code", "co_names", "co_varnames", "co_freevars", "co_cellvars", "co_argcount",
                  "co_posonlyargcount", "co_kwonlyargcount", "co_flags", "co_name", "co_qualname",
                  "co_exceptiontable", "co_stacksize", "co_nlocals")
    return all(getattr(a, name) == getattr(b, name) for name in attributes)


def _generated_modules() -> list[str]:
    return sorted(p.stem for p in GENERATED.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("stem", _generated_modules())
def test_precompiled_code_is_what_exec_makes_of_its_text(stem: str) -> None:
    methods = importlib.import_module(f"kpctl.model._precompiled.{stem}")
    assert methods.PYTHON == (3, 11) and methods.CODES
    for text, code in methods.CODES.items():
        namespace: dict[str, Any] = {}
        # What dataclasses._create_fn does with it (dont_inherit: not this file's __future__ flags).
        exec(compile(text, "<string>", "exec", dont_inherit=True), {}, namespace)
        assert _same_code(code, namespace["__create_fn__"].__code__), text


_DESCRIBE = textwrap.dedent("""
    import dataclasses, importlib, json, pkgutil, re, sys
    import kpctl
    from kpctl.model import precompiled
    if sys.argv[1] == "plain":
        dataclasses._create_fn = precompiled._original
    for info in pkgutil.walk_packages(kpctl.__path__, "kpctl."):
        if info.name != "kpctl.__main__" and not info.name.startswith("kpctl.model._precompiled"):
            importlib.import_module(info.name)

    def r(value):  # repr without addresses (they differ between the two interpreters)
        return re.sub(r" at 0x[0-9a-f]+", "", repr(value))

    def code(c):
        return [c.co_code.hex(), c.co_names, c.co_varnames, c.co_freevars, c.co_qualname,
                [code(k) if hasattr(k, "co_code") else r(k) for k in c.co_consts]]

    out = {}
    for name, module in sorted(sys.modules.items()):
        if not name.startswith("kpctl.") or module is None:
            continue
        for cls in vars(module).values():
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == name):
                continue
            methods = {}
            for attr in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
                fn = cls.__dict__.get(attr)
                fn = getattr(fn, "__wrapped__", fn)  # __repr__ is wrapped against recursion
                if fn is None or not hasattr(fn, "__code__"):
                    methods[attr] = r(fn)
                    continue
                methods[attr] = [code(fn.__code__), fn.__qualname__, fn.__module__, fn.__globals__["__name__"],
                                 r(fn.__defaults__), r(fn.__kwdefaults__), r(fn.__annotations__),
                                 [r(c.cell_contents) for c in fn.__closure__ or ()]]
            fields = [(f.name, r(f.type), r(f.default), r(f.default_factory), f.init, f.repr,
                       f.compare, f.hash) for f in dataclasses.fields(cls)]
            out[f"{name}.{cls.__qualname__}"] = [methods, fields, r(cls.__doc__), r(cls.__match_args__),
                                                 r(cls.__dataclass_params__)]
    print(json.dumps({"classes": out, "misses": precompiled.MISSES}))
""")


def _describe(mode: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _DESCRIBE, mode], capture_output=True, text=True, timeout=180,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def described() -> dict[str, dict[str, Any]]:
    return {mode: _describe(mode) for mode in ("precompiled", "plain")}


def test_every_kpctl_dataclass_is_the_standard_librarys(described: dict[str, dict[str, Any]]) -> None:
    fast, plain = described["precompiled"]["classes"], described["plain"]["classes"]
    assert len(plain) > 80 and fast.keys() == plain.keys()
    for name in plain:
        assert fast[name] == plain[name], name


def _misses_in_guarded_modules() -> list[str]:
    code = textwrap.dedent("""
        import dataclasses, importlib, pkgutil, sys
        import kpctl
        from kpctl.model import precompiled
        guarded = tuple(sys.argv[1:])
        seen = []
        hooked = dataclasses._create_fn
        def spy(name, args, body, *, globals=None, locals=None, return_type=dataclasses.MISSING):
            before = len(precompiled.MISSES)
            fn = hooked(name, args, body, globals=globals, locals=locals, return_type=return_type)
            if len(precompiled.MISSES) > before and str((globals or {}).get("__name__", "")).startswith(guarded):
                seen.append(globals["__name__"] + ": " + name)
            return fn
        dataclasses._create_fn = spy
        for info in pkgutil.walk_packages(kpctl.__path__, "kpctl."):
            if info.name.startswith(guarded) and info.name not in ("kpctl.__main__", "kpctl.model.precompiled_gen"):
                importlib.import_module(info.name)
        print("\\n".join(seen))
    """)
    proc = subprocess.run([sys.executable, "-c", code, *GUARDED], capture_output=True, text=True, timeout=180,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


def test_start_up_modules_have_current_precompiled_code() -> None:
    stale = _misses_in_guarded_modules()
    assert not stale, ("precompiled dataclass methods out of date (run: python -m kpctl.model.precompiled_gen):\n"
                       + "\n".join(stale))


def test_a_text_without_precompiled_code_is_compiled_as_before() -> None:
    module = types.ModuleType("kpctl.model._test_fresh_module")
    sys.modules[module.__name__] = module
    try:
        exec(textwrap.dedent("""
            from dataclasses import dataclass, field
            @dataclass(frozen=True)
            class Fresh:
                a: int
                b: tuple = field(default_factory=tuple)
        """), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    fresh = module.Fresh(1)
    assert precompiled.MISSES and "Fresh" not in precompiled.MISSES[-1] and "a" in precompiled.MISSES[-1]
    assert repr(fresh) == "Fresh(a=1, b=())" and fresh == module.Fresh(1, ()) and hash(fresh) == hash((1, ()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fresh.a = 2  # type: ignore[misc]
    precompiled.MISSES.clear()


def test_other_packages_dataclasses_are_untouched() -> None:
    before = list(precompiled.MISSES)

    @dataclasses.dataclass(frozen=True)
    class Elsewhere:
        x: int = 0

    assert precompiled.MISSES == before  # not even looked up
    assert Elsewhere.__init__.__code__.co_filename == "<string>"


def _plain_twin(module_name: str) -> types.ModuleType:
    """``module_name`` loaded again under another name, so its classes are built by the plain stdlib."""
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.origin is not None
    twin_spec = importlib.util.spec_from_file_location("twin_" + module_name.replace(".", "_"), spec.origin)
    assert twin_spec is not None and twin_spec.loader is not None
    twin = importlib.util.module_from_spec(twin_spec)
    sys.modules[twin.__name__] = twin
    twin_spec.loader.exec_module(twin)
    return twin


def test_the_twin_classes_are_built_without_precompiled_code() -> None:
    from kpctl.model import ipvs

    twin = _plain_twin("kpctl.model.ipvs")
    assert twin.VirtualService.__init__.__code__.co_filename == "<string>"
    assert ipvs.VirtualService.__init__.__code__.co_filename.endswith("model__ipvs.py")


_text = st.text(alphabet="ab:.1-", max_size=6)
_servers = st.lists(st.fixed_dictionaries({
    "address": _text, "port": st.integers(0, 3), "weight": st.integers(0, 2), "forward": st.sampled_from(["masq", "route"]),
}), max_size=3)
_services = st.fixed_dictionaries({
    "family": st.sampled_from(["inet", "inet6"]), "protocol": st.sampled_from(["tcp", "udp", None]),
    "address": st.one_of(st.none(), _text), "port": st.integers(0, 2), "fwmark": st.integers(0, 2),
    "scheduler": st.sampled_from(["rr", "wlc"]), "flags": st.integers(0, 3), "servers": _servers,
})


@settings(max_examples=300)
@given(st.lists(_services, min_size=2, max_size=2))
def test_model_instances_behave_as_with_the_plain_standard_library(pair: list[dict[str, Any]]) -> None:
    from kpctl.model import ipvs

    twin = _TWINS.setdefault("ipvs", _plain_twin("kpctl.model.ipvs"))
    fast = [ipvs.VirtualService.from_dict(d) for d in pair]
    plain = [twin.VirtualService.from_dict(d) for d in pair]
    for f, p in zip(fast, plain):
        assert repr(f) == repr(p) and hash(f) == hash(p) and f.to_dict() == p.to_dict()
        assert dataclasses.asdict(f) == dataclasses.asdict(p)
        assert [x.name for x in dataclasses.fields(f)] == [x.name for x in dataclasses.fields(p)]
        assert repr(dataclasses.replace(f, port=9)) == repr(dataclasses.replace(p, port=9))
        with pytest.raises(dataclasses.FrozenInstanceError):
            f.port = 1  # type: ignore[misc]
    assert (fast[0] == fast[1]) == (plain[0] == plain[1])
    assert (fast[0].servers == fast[1].servers) == (plain[0].servers == plain[1].servers)
    assert (fast[0].key == fast[1].key) == (plain[0].key == plain[1].key)


_TWINS: dict[str, types.ModuleType] = {}


def test_the_generator_writes_one_file_per_module_from_recorded_texts() -> None:
    from kpctl.model import precompiled_gen

    text = precompiled.method_text("__eq__", ["self", "other"], ["return True"], [], False)
    files = precompiled_gen.render([("kpctl.core.x", "A", text), ("kpctl.core.x", "B", text),
                                    ("kpctl.model.y", "C", text)])
    assert set(files) == {"core__x", "model__y"}
    namespace: dict[str, Any] = {}
    exec(compile(files["core__x"], "core__x.py", "exec", dont_inherit=True), namespace)
    assert list(namespace["CODES"]) == [text] and "# A.__eq__, B.__eq__" in files["core__x"]
    assert precompiled.module_file_stem("kpctl.core.trace.ipvs") == "core__trace__ipvs"


def test_the_generator_walks_every_module() -> None:
    import kpctl

    names = [info.name for info in pkgutil.walk_packages(kpctl.__path__, "kpctl.")]
    assert "kpctl.model.ipvs" in names and "kpctl.core.trace.engine" in names


def _create_fn_text(name: str, args: list[str], body: list[str], local_names: list[str], returns: bool) -> str:
    """Python 3.11's dataclasses._create_fn text, written as it builds it."""
    names = list(local_names) + (["_return_type"] if returns and "_return_type" not in local_names else [])
    annotation = "->_return_type" if returns else ""
    lines = "\n".join(f"  {b}" for b in body)
    return f"def __create_fn__({', '.join(names)}):\n def {name}({','.join(args)}){annotation}:\n{lines}\n return {name}"


_words = st.lists(st.text(alphabet="ab_:=,'()", max_size=5), max_size=4)


@settings(max_examples=500)
@given(st.sampled_from(["__init__", "__eq__", "x"]), _words, _words, _words, st.booleans())
def test_method_text_is_the_text_dataclasses_compiles(name: str, args: list[str], body: list[str],
                                                     local_names: list[str], returns: bool) -> None:
    expected = _create_fn_text(name, args, body, local_names, returns)
    assert precompiled.method_text(name, args, body, local_names, returns) == expected
