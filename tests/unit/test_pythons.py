"""The supported Pythons are declared once (pyproject.toml classifiers) and every setting agrees."""

from __future__ import annotations

import re

from tests import pythons


def test_declared_versions_are_3_9_to_3_13() -> None:
    assert pythons.declared_versions() == ["3.9", "3.10", "3.11", "3.12", "3.13"]


def test_requires_python_mypy_and_ruff_name_the_oldest_declared_version() -> None:
    text = (pythons.ROOT / "pyproject.toml").read_text()
    oldest = pythons.declared_versions()[0]
    assert re.search(r'^requires-python = ">=([\d.]+)"$', text, re.M).group(1) == oldest  # type: ignore[union-attr]
    assert f'python_version = "{oldest}"' in text
    assert f'target-version = "py{oldest.replace(".", "")}"' in text
