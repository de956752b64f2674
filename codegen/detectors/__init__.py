"""The detector registry: one module per detector, named as its template, C unit and tests."""

from __future__ import annotations

from types import ModuleType

from ..errors import UserError
from . import kmeans, moving_average, streaming_zscore, zscore

DETECTORS: dict[str, ModuleType] = {
    m.NAME: m for m in (zscore, streaming_zscore, moving_average, kmeans)
}
STREAMING = {"streaming_zscore", "moving_average"}


def get(name: str) -> ModuleType:
    if name not in DETECTORS:
        raise UserError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]
