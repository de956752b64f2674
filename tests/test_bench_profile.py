"""The Uno profile of `mcu-anomaly bench --profile`: simavr_runner -P, read by function."""

from __future__ import annotations

import pytest

from codegen.bench import firmware as bench
from codegen.training import train as training
from host_sim import targets
from host_sim.firmware_target import Target

from support import require_env


@pytest.mark.firmware(group="uno")
def test_the_profile_accounts_for_every_measured_cycle(tmp_path):
    require_env("uno")
    model = training.train(bench.synthetic(3), ["zscore"], {}, 0, "profiled", verbose=False)
    target = Target("uno", tmp_path / "uno")
    elf = target.build(model, bench.synthetic(3, seed=1).values[:50])
    run = target.run(model, elf, profile=True)
    assert len(run.cycles) == 50
    # the marked calls' cycles, every one attributed to a function of the ELF
    assert sum(f.cycles for f in run.profile) == sum(run.cycles)
    assert not [f for f in run.profile if f.name.startswith("0x")]
    calls = {f.name: f.calls for f in run.profile}
    assert calls["__subsf3"] == 3 * 50  # one subtraction per channel and sample
    rows = bench.profile_rows(run.profile, len(run.cycles))
    assert len(rows) <= bench.PROFILE_ROWS
    assert rows[0]["cycles"] == round(max(f.cycles for f in run.profile) / 50, 1)
    assert next(r for r in rows if r["function"] == "__subsf3")["calls"] == 3


def test_only_the_uno_has_a_profile(tmp_path):
    with pytest.raises(targets.FirmwareError, match="use uno"):
        targets.run("rv32imc", tmp_path / "none.elf", profile=tmp_path / "p.txt")
