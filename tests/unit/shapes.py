"""Documents with many dicts of one shape (its keys, and which values are dicts of which keys), as an
IPVS listing's servers: the JSON and YAML writers write those from a template of the shape, which
must give way to every value that does not fit it."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from kpctl.model.document import SharedDict

# Values at a slot of the shape that are not what the shape holds there
MISFITS = st.one_of(st.lists(st.integers(), min_size=1, max_size=2),
                    st.dictionaries(st.text("ab", min_size=1, max_size=2), st.integers(), min_size=1, max_size=2),
                    st.just({}), st.just([]), st.just(()), st.builds(SharedDict, st.just({"x": 1})))


@st.composite
def same_shapes(draw: Any, keys: Any, scalars: Any) -> list[dict[Any, Any]]:
    """One to six dicts of one shape, keys drawn from ``keys``, values from ``scalars``, and about
    one value in ten a misfit (a container where the shape has a scalar, or the other way round)."""
    names = draw(st.lists(keys, min_size=1, max_size=4, unique=True))
    inner = {name: draw(st.lists(keys, min_size=1, max_size=3, unique=True)) for name in names if draw(st.booleans())}

    def one() -> dict[Any, Any]:
        made: dict[Any, Any] = {}
        for name in names:
            if draw(st.integers(0, 9)) == 0:
                made[name] = draw(MISFITS)
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
