"""verify's memory stays bounded for many channels (issue 18, item 7): the states of the
streaming detectors (one per row, per channel six sums and the window) are compared in
runs that go on from each other, with the same counts and mismatches as one run."""

from __future__ import annotations

import numpy as np
import pytest

from codegen.bench.firmware import synthetic
from codegen.detectors import get
from codegen.training import train as training
from codegen.verify import battery, compare
from codegen.verify.engines import PythonEngine
from host_sim.hostlib import HostModel

from support import perturbed

CHANNELS = 40


@pytest.fixture(scope="module")
def wide():
    data = synthetic(CHANNELS, rows=600)
    return training.train(data, ["zscore", "streaming_zscore", "moving_average"],
                          {"streaming_zscore": {"window": 20}}, 0, "wide", verbose=False)


@pytest.fixture(scope="module")
def inputs(wide):
    return battery.battery(wide, 1500)


def test_a_resumed_run_is_the_stream_in_one_run(iot_bundle, iot_host):
    """Python reference and host C: rows 0..n in one run equal the same rows in three runs
    that go on from each other (scores, flags and the state after every row)."""
    X = battery.battery(iot_bundle, 900)["random"]
    streaming = [d for d in iot_bundle.detectors
                 if get(d).SPEC.streaming(iot_bundle.detectors[d])]
    for engine in (PythonEngine(iot_bundle), iot_host):
        whole = engine.run(X, streaming)
        parts = [engine.run(X[a:b], streaming, resume=a > 0)
                 for a, b in ((0, 123), (123, 124), (124, len(X)))]
        for name in streaming:
            assert np.array_equal(whole[name].scores.view(np.uint32),
                                  np.concatenate([p[name].scores for p in parts]).view(np.uint32))
            assert np.array_equal(whole[name].flags,
                                  np.concatenate([p[name].flags for p in parts]))
            for i in (0, 1):  # floats, counters
                got = np.concatenate([p[name].state[i] for p in parts])
                assert np.array_equal(whole[name].state[i].view(np.uint32 if i == 0 else np.uint16),
                                      got.view(np.uint32 if i == 0 else np.uint16)), name


class Counting:
    """An engine wrapper that counts the runs which go on from an earlier one."""

    def __init__(self, engine):
        self.engine, self.name, self.chunk = engine, engine.name, engine.chunk
        self.resumed = 0

    def run(self, X, detectors, flag_api=False, resume=False):
        self.resumed += resume
        return self.engine.run(X, detectors, flag_api, resume)


@pytest.mark.parametrize("detector, constant", [("streaming_zscore", "var_floor"),
                                                ("moving_average", "bound")])
def test_runs_report_what_one_run_reports(wide, inputs, monkeypatch, detector, constant):
    """A constant moved one ulp on every channel is caught when the states are compared 37
    rows at a time, with the same table and the same first mismatches as in one run."""
    changed = HostModel(perturbed(wide, detector, constant, index=None))
    whole = compare.compare(wide, changed, inputs)
    per_row = 4 * CHANNELS * (6 + 20) + 4 * CHANNELS * (6 + 50) + 2 * 6
    monkeypatch.setattr(compare, "STATE_BYTES", 37 * per_row)
    counting = Counting(changed)
    runs = compare.compare(wide, counting, inputs)
    assert counting.resumed > 2 * 1500 // 37  # the streams did go in runs
    assert not runs.ok and runs.table() == whole.table()
    assert [m.describe() for m in runs.mismatches] == [m.describe() for m in whole.mismatches]
    bad = {r.detector for r in runs.results if not r.ok}
    assert detector in bad and {name.split()[0] for name in bad} == {detector}  # its flag API too
    assert sum(r.state_mismatches for r in runs.results if r.detector == detector) > 0
