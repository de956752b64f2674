"""The detector registry: one module per detector, named as its template, C unit and tests."""

from __future__ import annotations

from types import ModuleType

from ..errors import UserError
from . import autoencoder, isolation_forest, kmeans, moving_average, streaming_zscore, zscore

DETECTORS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (zscore, streaming_zscore, moving_average, kmeans, isolation_forest, autoencoder)
}
# Detectors that learn on the device: reset(&state) / update(&state, x, &flag).
STREAMING = {"streaming_zscore", "moving_average"}
# Detectors that score the last `window` samples of one channel: score(window, &flag).
WINDOWED = {"autoencoder"}


def get(name: str) -> ModuleType:
    if name not in DETECTORS:
        raise UserError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]
