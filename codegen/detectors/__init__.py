"""The detector registry: one module per detector, named as its template, C unit and tests.

Adding a detector is one line here (docs/architecture.md has the whole checklist).
"""

from __future__ import annotations

from types import ModuleType

from codegen.detectors import (autoencoder, isolation_forest, kmeans, moving_average,
                               streaming_zscore, zscore)
from codegen.detectors.base import DetectorSpec
from codegen.errors import UserError

DETECTORS: dict[str, ModuleType] = {
    m.SPEC.name: m
    for m in (zscore, streaming_zscore, moving_average, kmeans, isolation_forest, autoencoder)
}
DEFAULT = [name for name, m in DETECTORS.items() if m.SPEC.default]


def get(name: str) -> ModuleType:
    if name not in DETECTORS:
        raise UserError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]


def spec(name: str) -> DetectorSpec:
    return get(name).SPEC
