"""Unit-tier settings.

Hypothesis' per-example deadline (200 ms) measures the machine, not the code: on a loaded
2-core CI machine it fails property tests that are correct. Properties keep their example
counts; only the wall-clock deadline is lifted.
"""

from hypothesis import settings

settings.register_profile("kpctl", deadline=None)
settings.load_profile("kpctl")
