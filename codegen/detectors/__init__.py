"""The detector registry: one module per detector, named as its template, C unit and tests."""

from __future__ import annotations

from types import ModuleType

from codegen.errors import UserError
from codegen.detectors import autoencoder, isolation_forest, kmeans, moving_average, streaming_zscore, zscore

DETECTORS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (zscore, streaming_zscore, moving_average, kmeans, isolation_forest, autoencoder)
}
# Detectors that always learn on the device: reset(&state) / update(&state, x, &flag);
# is_streaming() also asks the detector's module (see there).
STREAMING = {"streaming_zscore", "moving_average"}
# Detectors that score the last `window` samples of one channel: score(window, &flag).
WINDOWED = {"autoencoder"}
# Detectors whose header also offers `<model>_<detector>_flag(x)`: the flag without the score.
FLAG_ONLY = {"zscore"}


def is_streaming(name: str, fitted) -> bool:
    """Whether the trained detector keeps state on the device (reset / update): always for
    STREAMING, and for a module that says so for this fitted detector with is_streaming(fitted)
    (isolation_forest with rolling features)."""
    module = get(name)
    return name in STREAMING or (hasattr(module, "is_streaming") and module.is_streaming(fitted))


def get(name: str) -> ModuleType:
    if name not in DETECTORS:
        raise UserError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
    return DETECTORS[name]
