"""The bench's emlearn peers (issue 10, part 6): measured on the Uno in the bench's own
harness beside the detectors they are paired with, checked against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codegen import cli
from codegen.bench import firmware as bench
from codegen.bench import peers
from codegen.detectors import NAMES
from host_sim.firmware_target import Target

from support import require, require_env


@pytest.mark.firmware(group="uno")
def test_peer_rows_beside_ours_on_the_uno(tmp_path):
    require(peers.available(), "emlearn (the [peers] extra)")
    require_env("uno")
    numpy_errors = np.geterr()
    document = bench.run(bench.paired_bundles(), ["uno", "rv32imc"], Target,
                         tmp_path / "bench.json", samples=4, with_peers=True)
    # emlearn sets numpy.seterr(all='raise') on import; the bench must not pass that on
    assert np.geterr() == numpy_errors
    assert json.loads((tmp_path / "bench.json").read_text())["peers"] == document["peers"]
    pairs = {(p["model"], p["shape"]): p for p in document["peers"]}
    assert set(pairs) == {(p.model, p.shape) for p in peers.PEERS}
    for p in pairs.values():
        assert p["target"] == "uno" and p["samples"] == 4
        assert p["cycles_max"] >= p["cycles"] > 1000
        assert p["flash_bytes"] > 0
        assert p["ram_bytes"] > 0  # emlearn keeps its constants in RAM
        assert p["decision_agreement"] >= peers.MIN_AGREEMENT
        assert 0 < p["max_score_error"] <= peers.MAX_SCORE_ERROR  # close, never bit-exact
        if p["ours"] in NAMES:
            ours_row = p["ours_row"]
            assert ours_row["detector"] == p["ours"] and ours_row["target"] == "uno"
            assert p["ratio"]["cycles"] == round(ours_row["cycles"] / p["cycles"], 3)
            assert ours_row["ram_bytes"] == 0 and p["ratio"]["ram_bytes"] == 0
        else:  # turns on once the detector is registered
            assert p["ours_row"] is None and p["ratio"] is None
    # our paired rows run on the Uno only, as the peers
    assert {r["target"] for r in document["rows"]} == {"uno"}
    printed = peers.table(document["peers"])
    assert "EllipticEnvelope" in printed and "3 features x 3 components" in printed


def test_a_peer_without_our_detector_has_no_ratio():
    row = {"target": "uno", "peer": "emlearn 0.23.2", "model": "GaussianMixture",
           "shape": "3 features x 3 components", "cycles": 30000, "cycles_max": 30100,
           "flash_bytes": 3000, "ram_bytes": 186, "decision_agreement": 1.0,
           "max_score_error": 4e-6, "ours": "nonesuch", "bundle": "peers_3_features"}
    ours = {"target": "uno", "bundle": "peers_3_features", "detector": "mahalanobis",
            "api": "score", "cycles": 3000, "flash_bytes": 1000, "ram_bytes": 0}
    alone = peers.pair(row, [ours])
    assert alone["ours_row"] is None and alone["ratio"] is None
    assert "not registered" in peers.table([alone])
    paired = peers.pair({**row, "ours": "mahalanobis"}, [ours])
    assert paired["ratio"] == {"cycles": 0.1, "flash_bytes": 0.333, "ram_bytes": 0.0}


def test_bench_without_emlearn_says_how_to_get_the_peer_rows(monkeypatch, tmp_path, capsys):
    """The peer rows are left out with the install command, and the bench goes on."""
    seen = {}

    def run(bundles, envs, make_target, json_out, samples, judge, progress, with_peers):
        seen["with_peers"] = with_peers
        return {"rows": [], "autoencoder_memory": [], "peers": []}

    monkeypatch.setattr(peers, "available", lambda: False)
    monkeypatch.setattr(bench, "reference_bundles", lambda: [])
    monkeypatch.setattr(bench, "run", run)
    assert cli.main(["bench", "--json", str(tmp_path / "b.json")]) == 0
    assert seen["with_peers"] is False
    assert "pip install '.[peers]'" in capsys.readouterr().err
