"""Reading the YAML data files shipped with MedRisk (rules, risk model, SDK and API tables).

libyaml's C loader when available: the pure-Python loader takes about half a second for
the SDK database alone, which a one-file scan would pay on every run.
"""

from __future__ import annotations

from typing import Any

import yaml

SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader
