"""The bench's peers, measured on the Uno in the bench's own harness beside the detectors
they are paired with: emlearn's models (checked against scikit-learn) and the lab's Arduino
streaming Z-score (checked against its float32 transcription)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codegen import cli
from codegen.bench import firmware as bench
from codegen.bench import lab_peer, peers
from codegen.detectors import NAMES
from codegen.errors import UserError
from host_sim.firmware_target import Target

from support import require, require_env


@pytest.mark.firmware(group="uno")
def test_peer_rows_beside_ours_on_the_uno(tmp_path):
    require(peers.available(), "emlearn (the [peers] extra)")
    require_env("uno")
    numpy_errors = np.geterr()
    document = bench.run(bench.emlearn_bundles(), ["uno", "rv32imc"], Target,
                         tmp_path / "bench.json", samples=4, with_peers=True)
    # emlearn sets numpy.seterr(all='raise') on import; the bench must not pass that on
    assert np.geterr() == numpy_errors
    assert json.loads((tmp_path / "bench.json").read_text())["peers"] == document["peers"]
    pairs = {(p["model"], p["shape"]): p for p in document["peers"] if p["peer"] != "the lab"}
    assert set(pairs) == {(p.model, p.shape) for p in peers.PEERS}
    for p in pairs.values():
        assert p["target"] == "uno" and p["samples"] == 4
        assert p["cycles_max"] >= p["cycles"] > 1000
        assert p["flash_bytes"] > 0
        assert p["ram_bytes"] > 0  # emlearn keeps its constants in RAM
        assert p["decision_agreement"] >= peers.MIN_AGREEMENT
        assert 0 < p["max_score_error"] <= peers.MAX_SCORE_ERROR  # close, never bit-exact
        if p["ours"] in NAMES:
            ours_row = p["ours_rows"][0]
            assert ours_row["detector"] == p["ours"] and ours_row["target"] == "uno"
            assert ours_row["ratio"]["cycles"] == round(ours_row["cycles"] / p["cycles"], 3)
            assert ours_row["ram_bytes"] == 0 and ours_row["ratio"]["ram_bytes"] == 0
        else:  # turns on once the detector is registered
            assert p["ours_rows"] == []
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
    row["check"] = "decision 100.0% as scikit-learn's"
    alone = peers.pair(row, [ours])
    assert alone["ours_rows"] == []
    assert "not registered" in peers.table([alone])
    flag = {**ours, "api": "flag", "cycles": 600}
    paired = peers.pair({**row, "ours": "mahalanobis"}, [flag, ours])
    assert [o["api"] for o in paired["ours_rows"]] == ["score", "flag"]  # the score API first
    assert paired["ours_rows"][0]["ratio"] == {"cycles": 0.1, "flash_bytes": 0.333,
                                               "ram_bytes": 0.0}
    assert paired["ours_rows"][1]["ratio"]["cycles"] == 0.02
    printed = peers.table([paired])
    assert "mahalanobis flag" in printed and printed.count("decision 100.0%") == 1


def test_bench_without_emlearn_says_how_to_get_the_peer_rows(monkeypatch, tmp_path, capsys):
    """The peer rows are left out with the install command, and the bench goes on."""
    seen = {}

    def run(bundles, envs, make_target, json_out, samples, judge, progress, with_peers,
            with_emlearn, profile):
        seen["with_peers"], seen["with_emlearn"] = with_peers, with_emlearn
        return {"rows": [], "autoencoder_memory": [], "peers": []}

    monkeypatch.setattr(peers, "available", lambda: False)
    monkeypatch.setattr(bench, "reference_bundles", lambda: [])
    monkeypatch.setattr(bench, "run", run)
    assert cli.main(["bench", "--json", str(tmp_path / "b.json")]) == 0
    assert seen == {"with_peers": True, "with_emlearn": False}  # the lab's peer still runs
    assert "pip install '.[peers]'" in capsys.readouterr().err


@pytest.mark.firmware(group="uno")
def test_the_lab_peer_learns_from_normal_readings_and_locks_out_on_drift(tmp_path, monkeypatch):
    """Its cost is reported apart on the samples it learns from and those it flags; its
    flags on the Uno equal its float32 transcription, and a changed transcription fails."""
    require_env("uno")
    normal = bench.synthetic(1, seed=1).values
    row = lab_peer.measure(normal, 200, Target, tmp_path / "a")
    assert row["samples"] > 180 and row["flagged_samples"] > 150  # ~1 % of normal flagged
    assert row["cycles"] > row["flagged_cycles"] > 1000  # flagged: no window update
    assert row["ram_bytes"] >= 50 * 4 and row["flash_bytes"] > 0
    monkeypatch.setattr(lab_peer, "THRESHOLD", np.float32(2.4))
    with pytest.raises(UserError, match="float32 transcription"):
        lab_peer.measure(normal, 200, Target, tmp_path / "b")


def test_the_lab_transcription_locks_out_on_drift():
    values, drift_from = lab_peer.readings(np.zeros(10, dtype=np.float32) + 1, 100)
    rng = np.random.default_rng(0)
    steady = (1 + rng.standard_normal(300)).astype(np.float32)
    flags = lab_peer.reference(np.concatenate([steady, steady + np.float32(50)]))
    assert flags[:300].mean() < 0.05 and flags[300:].all()  # never learns the new level
    assert len(values) == drift_from + 100 and drift_from == lab_peer.WINDOW + 100


@pytest.mark.parametrize("argv, message", [
    (["bench", "some_bundle", "--peers"], "give no bundle"),
    (["bench", "--peers", "--targets", "rv32imc"], "add uno to --targets"),
])
def test_bench_peers_refuses_what_it_cannot_measure(argv, message, capsys):
    assert cli.main(argv) != 0
    assert message in capsys.readouterr().err
