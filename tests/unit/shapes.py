"""Documents with many dicts of one shape (its keys, and which values are dicts of which keys), as an
IPVS listing's servers: the JSON and YAML writers write those from a template of the shape, which
must give way to every value that does not fit it."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from hypothesis import strategies as st

# Values at a slot of the shape that are not what the shape holds there
MISFITS = st.one_of(st.lists(st.integers(), min_size=1, max_size=2),
                    st.dictionaries(st.text("ab", min_size=1, max_size=2), st.integers(), min_size=1, max_size=2),
                    st.just({}), st.just([]), st.just(()), st.builds(OrderedDict, st.just({"x": 1})))  # a dict, not a plain one


@st.composite
def same_shapes(draw: Any, keys: Any, scalars: Any) -> list[dict[Any, Any]]:
    """One to six dicts of one shape, keys drawn from ``keys``, values from ``scalars``, and about
    one value in ten a misfit (a container where the shape has a scalar, or the other way round)."""
    names = draw(st.lists(keys, min_size=1, max_size=7, unique=True))  # planned from PLANNED (4) keys
    inner = {name: draw(st.lists(keys, min_size=1, max_size=3, unique=True)) for name in names if draw(st.booleans())}
    # sequences (an IPVS service's servers): mostly of items, some empty
    sequences = {name for name in names if name not in inner and draw(st.integers(0, 2)) == 0}

    def one() -> dict[Any, Any]:
        made: dict[Any, Any] = {}
        for name in names:
            if draw(st.integers(0, 9)) == 0:  # or a dict of other keys, as many as the shape's dict has
                made[name] = draw(st.one_of(MISFITS, st.just({f"{key}'": 0 for key in inner.get(name, ["k"])})))
            elif name in sequences:
                made[name] = draw(st.one_of(st.lists(st.one_of(scalars, st.just({"a": 1, "b": [2]})), min_size=1,
                                                     max_size=3), st.just([])))
            elif name in inner:
                made[name] = {key: draw(scalars) for key in inner[name]}
            else:
                made[name] = draw(scalars)
        return made

    return [one() for _ in range(draw(st.integers(1, 6)))]


def placed(dicts: list[dict[Any, Any]], where: int) -> Any:
    """``dicts`` as a list (0), under keys and in a nested list (1), or each in a dict and a list (2)."""
    if where == 0:
        return dicts
    if where == 1:
        return {"a": dicts, "b": [dicts, dicts[:1]]}
    return [{"s": one, "t": [one]} for one in dicts]


def servers_and_misfits() -> list[dict[str, Any]]:
    """An IPVS listing's servers, then one of the same keys for each way a value can misfit."""
    def server(port: int, stats: Any, weight: Any = 1) -> dict[str, Any]:
        return {"address": "10.0.0.1", "port": port, "forward": "masq", "weight": weight, "stats": stats}

    counters = {"conns": 1, "inpkts": 2, "outpkts": 3}
    return [server(80, dict(counters)), server(81, dict(counters)), server(82, dict(counters)),
            server(83, {"conns": 1, "inpkts": 2, "other": 3}), server(84, {}), server(85, [1, 2]),
            server(86, OrderedDict(counters)), server(87, dict(counters), [1]), server(88, dict(counters), {}),
            server(89, {"conns": 1, "inpkts": 2}), server(90, {"conns": [1], "inpkts": 2, "outpkts": 3}),
            server(91, dict(counters))]


def services_and_misfits() -> list[dict[str, Any]]:
    """IPVS services (their servers a sequence), then one of the same keys for each thing a
    sequence's place may hold: no servers, a tuple, a scalar, a mapping, a nested sequence."""
    def service(port: int, servers: Any) -> dict[str, Any]:
        return {"address": "10.0.0.1", "port": port, "scheduler": "rr", "servers": servers,
                "stats": {"conns": 0, "inpkts": 0}}

    return [service(80, servers_and_misfits()[:2]), service(81, servers_and_misfits()[:3]), service(82, []),
            service(83, (1, "a")), service(84, 7), service(85, {"a": 1}), service(86, [[1, 2], []]),
            service(87, [{}]), service(88, servers_and_misfits()[:1])]
