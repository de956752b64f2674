"""The detector registry: one module per detector, named as its template, C unit and tests.

Adding a detector is one name in NAMES (docs/architecture.md has the whole checklist).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from codegen.errors import UserError

NAMES = ("zscore", "streaming_zscore", "moving_average", "kmeans", "isolation_forest",
         "autoencoder", "mahalanobis", "gmm")
DETECTORS: dict[str, ModuleType] = {
    name: importlib.import_module(f"codegen.detectors.{name}") for name in NAMES}
DEFAULT = [name for name, m in DETECTORS.items() if m.SPEC.default]


def get(name: str) -> ModuleType:
    if name not in DETECTORS:
        raise UserError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]
