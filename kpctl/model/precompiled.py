"""kpctl's dataclasses built from precompiled method code (the standard library's own classes).

Python 3.11's ``dataclasses`` writes the source text of each method it generates
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, frozen ``__setattr__``/``__delattr__``)
and compiles it with ``exec``: six compilations per frozen class, about 1 ms per class, so
importing kpctl's models cost more than importing click.  :func:`install` (called by
``kpctl/__init__.py``) has ``dataclasses`` take, for a class defined in a kpctl module, the
code compiled ahead of time from that very text, character for character
(``kpctl/model/_precompiled/``, written by ``python -m kpctl.model.precompiled_gen`` and
byte-compiled like any module).  The function is then made exactly as ``exec`` would make it
(same code, same module globals), so the class, its instances, ``fields``/``replace``/
``asdict``, equality, hashing and ``repr`` are the standard library's, unchanged.  A text with
no precompiled code (a class changed since the file was written, another Python version) is
compiled as before: only slower.  Classes of other packages are never touched.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
from typing import Any

PYTHON = (3, 11)  # the dataclasses whose texts this mirrors (3.13 builds methods differently)
PREFIX = "kpctl."  # modules whose dataclasses take precompiled code

# (module, class, text) of every text compiled for a kpctl class, when the generator asks.
RECORDED: list[tuple[str, str, str]] | None = None
# Texts of kpctl classes that had no precompiled code (compiled at run time instead).
MISSES: list[str] = []

_original: Any = getattr(dataclasses, "_create_fn", None)
_codes: dict[str, dict[str, types.CodeType]] = {}  # module -> text -> code


def module_file_stem(module: str) -> str:
    """kpctl.core.ipvs_plan -> core__ipvs_plan: the file under _precompiled/ for that module."""
    return module.removeprefix(PREFIX).replace(".", "__")


def _precompiled_codes(module: str) -> dict[str, types.CodeType]:
    codes = _codes.get(module)
    if codes is None:
        try:  # one small file per module: a command loads only the classes it imports
            methods = importlib.import_module(f"kpctl.model._precompiled.{module_file_stem(module)}")
        except ImportError:  # a module added since the files were written
            codes = {}
        else:
            codes = methods.CODES if methods.PYTHON == sys.version_info[:2] else {}
        _codes[module] = codes
    return codes


def method_text(name: str, args: list[str], body: list[str], local_names: list[str], returns: bool) -> str:
    """The text ``dataclasses._create_fn`` compiles (3.11): a factory closing over ``local_names``."""
    if returns and "_return_type" not in local_names:
        local_names = local_names + ["_return_type"]
    lines = "  " + "\n  ".join(body) if body else ""  # = "\n".join(f"  {b}" for b in body), quicker
    return "".join(("def __create_fn__(", ", ".join(local_names), "):\n def ", name, "(", ",".join(args),
                    ")->_return_type:\n" if returns else "):\n", lines, "\n return ", name))


def _class_being_built() -> str:
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name != "_process_class":
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_locals["cls"].__qualname__ if frame is not None else "?"


def _create_fn(name: str, args: list[str], body: list[str], *, globals: dict[str, Any] | None = None,
               locals: dict[str, Any] | None = None, return_type: Any = dataclasses.MISSING) -> Any:
    module = str(globals.get("__name__", "")) if globals is not None else ""
    if globals is None or not module.startswith(PREFIX):
        return _original(name, args, body, globals=globals, locals=locals, return_type=return_type)
    values = dict(locals or {})
    returns = return_type is not dataclasses.MISSING
    text = method_text(name, args, body, list(values), returns)
    if RECORDED is not None:
        RECORDED.append((module, _class_being_built(), text))
    code = _precompiled_codes(module).get(text)
    if code is None:
        MISSES.append(text)
        return _original(name, args, body, globals=globals, locals=locals, return_type=return_type)
    if returns:
        values["_return_type"] = return_type
    factory = types.FunctionType(code, globals, "__create_fn__")  # what exec(text, globals) defines
    return factory(**values)


def install() -> None:
    """Route kpctl's dataclasses through the precompiled code (once; other Pythons: no-op)."""
    if _original is None or sys.version_info[:2] != PYTHON:
        return
    dataclasses._create_fn = _create_fn  # type: ignore[attr-defined]
