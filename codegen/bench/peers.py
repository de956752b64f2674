"""emlearn's anomaly models on the Uno beside ours: `mcu-anomaly bench`.

Each peer of PEERS is fitted with scikit-learn on the same synthetic rows as the detector
it is paired with, converted to C by emlearn itself (`emlearn.convert(...).save()`, at bench
time) and measured in the same harness as ours: the firmware app (the uno env's avr-gcc
flags), simavr's cycles around one call per sample, the same held-out readings, flash and RAM
against the same stub app.  emlearn's files do not compile as C++, so the app's dispatch,
a C file, includes them; emlearn's include directory goes on the include path.

A peer is not bit-exact (its constants are printed with six decimals, its float arithmetic
is its own): its run is checked against scikit-learn's own decision and score, and how close
it is goes in the row.  Without emlearn (the [peers] extra) there are no peer rows.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codegen.bundle import Bundle
from codegen.detectors import NAMES
from codegen.emit.literals import c_float
from codegen.errors import UserError

F32 = np.float32
ENV = "uno"
PIP_PACKAGE = "emlearn==0.23.2"  # pyproject.toml's [peers] extra
INSTALL = f"the emlearn peer rows need `pip install '.[peers]'` ({PIP_PACKAGE}); going on without"
# A peer run is sane when its decision agrees with scikit-learn's on this share of rows and
# its scores are this close to scikit-learn's float64 ones (|difference| / max(1, |score|)).
MIN_AGREEMENT = 0.95
MAX_SCORE_ERROR = 1e-3
PERCENTILE = 1  # the mixture's decision: log-likelihood below this percentile of training's


@dataclass(frozen=True)
class Peer:
    """One emlearn model and shape, and the detector of ours it is paired with."""

    model: str  # scikit-learn's class, as emlearn.convert knows it
    features: int
    ours: str  # our detector: paired when registered (codegen.detectors.NAMES)
    params: dict = field(default_factory=dict)  # its parameters for training
    components: int = 0  # GaussianMixture only

    @property
    def shape(self) -> str:
        return f"{self.features} features" + (
            f" x {self.components} components" if self.components else "")


PEERS = (
    # EllipticEnvelope is a robust (MinCovDet) Mahalanobis distance.
    Peer("EllipticEnvelope", 3, "mahalanobis", {"covariance": "robust"}),
    Peer("EllipticEnvelope", 5, "mahalanobis", {"covariance": "robust"}),
    Peer("GaussianMixture", 3, "gmm", {"k": 3, "covariance": "full"}, components=3),
)


def available() -> bool:
    return importlib.util.find_spec("emlearn") is not None


def bundle_name(features: int) -> str:
    """Our bundle of the paired detectors on this many features."""
    return f"peers_{features}_features"


def paired(peers=PEERS) -> dict[int, dict[str, dict]]:
    """features -> {our registered detector: its parameters}."""
    out: dict[int, dict[str, dict]] = {}
    for peer in peers:
        if peer.ours in NAMES:
            out.setdefault(peer.features, {})[peer.ours] = peer.params
    return out


def _fit(peer: Peer, X: np.ndarray, seed: int):
    if peer.model == "EllipticEnvelope":
        from sklearn.covariance import EllipticEnvelope
        return EllipticEnvelope(random_state=seed).fit(X)
    from sklearn.mixture import GaussianMixture
    return GaussianMixture(peer.components, covariance_type="full", random_state=seed).fit(X)


@contextlib.contextmanager
def _inside(directory: Path):
    """emlearn's EllipticEnvelope conversion compiles a host check program in ./tmp."""
    here = os.getcwd()
    directory.mkdir(parents=True, exist_ok=True)
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(here)


def _reference(peer: Peer, estimator, X: np.ndarray, train: np.ndarray):
    """scikit-learn's (scores, flags, the C decision lines) as emlearn's C reports them:
    the squared distance and predict's outlier for EllipticEnvelope; the log-likelihood and
    `below the PERCENTILE-th percentile of training's` for GaussianMixture."""
    n = peer.features
    if peer.model == "EllipticEnvelope":
        call = [f"*flag = (uint8_t)eml_elliptic_envelope_predict(&peer_classifier, x, {n}, "
                "&score);"]
        return estimator.mahalanobis(X), estimator.predict(X) == -1, call
    threshold = F32(np.percentile(estimator.score_samples(train), PERCENTILE))
    call = [f"float log_proba[{peer.components}];",
            f"(void)peer_score(x, {n}, log_proba, &score);",
            f"*flag = (uint8_t)(score < {c_float(threshold)});"]
    scores = estimator.score_samples(X)
    return scores, scores.astype(F32) < threshold, call


def firmware_name(peer: Peer) -> str:
    return f"emlearn_{peer.model.lower()}"


def measure(peer: Peer, train: np.ndarray, vectors: np.ndarray, make_target, workdir: Path,
            seed: int = 0) -> dict:
    """The peer's row: fitted on train, emlearn's C run on vectors on the Uno (make_target:
    codegen.bench.firmware.measure), checked against scikit-learn."""
    estimator = _fit(peer, train.astype(np.float64), seed)
    # emlearn.bayes calls numpy.seterr(all='raise') when imported: errstate() puts the
    # process's numpy error handling back as it was (or every later float32 underflow in
    # this process raises).
    with np.errstate(), _inside(workdir / "convert"):
        import emlearn

        code = emlearn.convert(estimator, method="inline").save(name="peer")
    want_scores, want_flags, call = _reference(peer, estimator, vectors.astype(np.float64), train)
    base = Bundle(bundle_name(peer.features), [f"s{c}" for c in range(peer.features)],
                  train.mean(axis=0).tolist(), train.std(axis=0).tolist(), {}, {})
    name = firmware_name(peer)
    target = make_target(ENV, workdir / ENV)
    stub_flash, stub_ram = target.size(target.build(base, vectors, stub=True))
    elf = target.build(base, vectors, peer={"name": name, "header": "emlearn_peer.h",
                                            "code": code, "call": call,
                                            "include_dirs": [emlearn.includedir]})
    flash, ram = target.size(elf)
    run = target.run(base, elf, detectors=[name])
    cycles = np.array(run.cycles)
    if len(cycles) != len(vectors):
        raise UserError(f"{ENV}: {len(cycles)} measurements for {len(vectors)} samples")
    scores = run.scores[0].astype(np.float64)
    agreement = float(np.mean(run.flags[0] == want_flags))
    error = float(np.max(np.abs(scores - want_scores) / np.maximum(np.abs(want_scores), 1)))
    if not (agreement >= MIN_AGREEMENT and error <= MAX_SCORE_ERROR):
        raise UserError(f"emlearn's {peer.model} ({peer.shape}) on the {ENV} is off "
                        f"scikit-learn's: decision agrees on {agreement:.1%} of rows, scores "
                        f"within {error:.2g}; check the emlearn version "
                        f"(pip install {PIP_PACKAGE})")
    return {"target": ENV, "peer": f"emlearn {importlib.metadata.version('emlearn')}",
            "model": peer.model, "shape": peer.shape, "samples": len(cycles),
            "cycles": int(np.median(cycles)), "cycles_max": int(cycles.max()),
            "flash_bytes": flash - stub_flash, "ram_bytes": ram - stub_ram,
            "decision_agreement": agreement, "max_score_error": error,
            "check": f"decision {agreement:.1%} as scikit-learn's, scores within {error:.1e}",
            "ours": peer.ours, "ours_params": peer.params, "bundle": bundle_name(peer.features)}


def pair(peer_row: dict, rows: list[dict]) -> dict:
    """The peer row with our rows of the same run beside it ("ours_rows": the paired
    detector's rows of the same bundle and target, its score API first, then its flag API;
    empty when our detector is not registered or was not measured), each with its ratios
    ours / peer."""
    ours = [{**r, "ratio": {k: round(r[k] / peer_row[k], 3) if peer_row[k] else None
                            for k in ("cycles", "flash_bytes", "ram_bytes")}}
            for r in rows if r["target"] == peer_row["target"]
            and r["bundle"] == peer_row["bundle"] and r["detector"] == peer_row["ours"]]
    return {**peer_row, "ours_rows": sorted(ours, key=lambda r: r.get("api") != "score")}


def table(pairs: list[dict]) -> str:
    if not pairs:
        return ""
    lines = [f"peers on the {ENV}: the same harness, readings and stub (ratio: ours / peer; "
             "emlearn's RAM is its constants, ours keeps them in flash)",
             f"{'peer':<41} {'shape':<25} {'median':>7} {'max':>7} {'flash B':>7} "
             f"{'RAM B':>6}  {'ours':<22} {'median':>7} {'flash B':>7} {'RAM B':>6}  "
             f"{'ratio cycles/flash/RAM':<23} peer checked"]
    for p in pairs:
        peer = (f"{p['peer'] + ' ' + p['model']:<41} {p['shape']:<25} {p['cycles']:>7} "
                f"{p['cycles_max']:>7} {p['flash_bytes']:>7} {p['ram_bytes']:>6}  ")
        beside = [(f"{o['detector'] + ('' if o['api'] == 'score' else ' ' + o['api']):<22} "
                   f"{o['cycles']:>7} {o['flash_bytes']:>7} {o['ram_bytes']:>6}  "
                   + " / ".join("-" if o["ratio"][k] is None else f"{o['ratio'][k]:.2f}"
                                for k in ("cycles", "flash_bytes", "ram_bytes")))
                  for o in p["ours_rows"]] or [f"{p['ours'] + ' not registered':<71}"]
        for i, ours in enumerate(beside):
            lines.append((peer if i == 0 else " " * len(peer)) + f"{ours:<72}"
                         + (p["check"] if i == 0 else ""))
    return "\n".join(lines)
