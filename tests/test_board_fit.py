"""RAM and flash checked against the board before the compiler fails (issue 18, item 7):
`train --target`, `verify --target` and `generate --firmware` refuse a bundle that cannot
fit, with the figure, the limit and what would make it smaller.  No firmware is built
here; tests/test_contract.py and tests/test_firmware_parity.py hold the estimate against
real objects and builds."""

from __future__ import annotations

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen import cli
from codegen.bench.firmware import synthetic
from codegen.data.dataset import Dataset
from codegen.detectors import window
from codegen.firmware import memory
from codegen.training import train as training

from support import write_csv


def csv_of(path, channels: int, rows: int = 400):
    values = synthetic(channels, rows).values
    return write_csv(path, [f"s{c}" for c in range(channels)],
                     [[repr(float(v)) for v in row] for row in values])


def test_train_refuses_state_beyond_the_unos_ram(tmp_path, capsys):
    """40 channels of streaming_zscore keep 40 x (6 + 50) floats: 8,971 B, the Uno has
    2,048; before, train and generate went through and the Uno build failed in the
    linker."""
    csv = csv_of(tmp_path / "wide.csv", 40)
    out = tmp_path / "model"
    args = ["train", str(csv), "--detectors", "streaming_zscore", "--out", str(out), "--quiet"]
    assert cli.main(args + ["--target", "uno"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert not out.exists()
    assert err.startswith("error: bundle 'model' (40 channels) needs at least 8,971 B of RAM on "
                          "uno, and the Uno (ATmega328P) has 2,048 B (streaming_zscore 8,971 B)")
    assert "use fewer channels (--columns) or a smaller --window" in err
    assert "a bigger board (--target cortex_m4f)" in err
    assert window.state_bytes(40, 50) == 8971
    # a board it fits, and a window it fits the Uno with
    assert cli.main(args + ["--target", "cortex_m4f"]) == 0
    assert cli.main(args + ["--target", "uno", "--window", "5", "--force",
                            "--set", "streaming_zscore.min_count=5"]) == 0


def test_verify_and_generate_refuse_firmware_that_cannot_fit(tmp_path, capsys):
    """The firmware app adds its line buffer (24 B per channel) and its sample on the stack:
    zscore on 80 channels keeps no state, yet the app cannot fit an Uno.  verify --target
    refuses before building, generate --firmware --target before writing; without a
    target, generate warns for each board the firmware does not fit."""
    csv = csv_of(tmp_path / "wide.csv", 80)
    model = tmp_path / "model"
    assert cli.main(["train", str(csv), "--detectors", "zscore", "--out", str(model),
                     "--quiet", "--target", "uno"]) == 0  # the detector alone fits
    capsys.readouterr()
    assert cli.main(["verify", str(model), "--target", "uno"]) == 2
    err = capsys.readouterr().err
    assert ("error: the firmware for bundle 'model' (80 channels) needs at least 2,449 B of "
            "RAM on uno, and the Uno (ATmega328P) has 2,048 B (the firmware app 2,449 B)") in err
    out = tmp_path / "generated"
    assert cli.main(["generate", str(model), "--firmware", "--target", "uno",
                     "--out", str(out)]) == 2
    assert "2,449 B of RAM on uno" in capsys.readouterr().err and not out.exists()
    assert cli.main(["generate", str(model), "--firmware", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: the firmware for bundle 'model'" in err and "on uno" in err
    assert "cortex_m4f" not in err.replace("(--target cortex_m4f)", "")
    assert (out / "mcua_firmware.h").is_file()


def test_flash_refusal_names_the_forests_fix(tmp_path, capsys):
    """The default (ESP32-class) forest of 100 trees takes ~80 KB of flash."""
    csv = csv_of(tmp_path / "three.csv", 3)
    out = tmp_path / "model"
    assert cli.main(["train", str(csv), "--detectors", "isolation_forest", "--out", str(out),
                     "--quiet", "--target", "uno"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert "B of flash on uno, and the Uno (ATmega328P) has 32,256 B (isolation_forest" in err
    assert "isolation_forest.target=uno" in err and not out.exists()


def test_the_estimate_adds_static_parts_and_the_largest_stack_buffer():
    """kmeans keeps z[channels] on the stack and the rolling forest its features; the app's
    sample is on the stack while either runs; streaming state adds up."""
    values = synthetic(4, 400).values
    dataset = Dataset("d", [f"s{c}" for c in range(4)], values, np.zeros(400, dtype=bool))
    trained = training.train(dataset, ["kmeans", "streaming_zscore", "moving_average"],
                             {"kmeans": {"k": 2}}, 0, "m", verbose=False)
    found = {p.what: p for p in memory.parts(trained, "uno", app=True)}
    assert found["kmeans"].stack == 16 and found["kmeans"].ram == 0
    assert found["streaming_zscore"].ram == found["moving_average"].ram == 4 * 56 * 4 + 11
    app = found["the firmware app"]
    assert (app.ram, app.stack) == (memory.BOARDS["uno"].app_ram + 24 * 4 + 9, 16)
    ram, flash = memory.needs(list(found.values()))
    assert ram == 2 * (4 * 56 * 4 + 11) + app.ram + 16 + 16
    assert flash == sum(p.flash for p in found.values())
    assert memory.check(trained, "cortex_m4f") == memory.needs(memory.parts(trained, "cortex_m4f"))


@pytest.mark.parametrize("env", sorted(memory.BOARDS))
def test_the_iot_bundle_fits_every_board(iot_bundle, env, tmp_path):
    """The shapes the firmware tests build pass the check (it never refuses what fits)."""
    memory.check(iot_bundle, env, app=True)
    path = bundle_mod.save(iot_bundle, tmp_path / "model")
    assert cli.main(["generate", str(path), "--firmware", "--target", env,
                     "--out", str(tmp_path / "fw")]) == 0


def test_a_mahalanobis_factor_beyond_the_unos_flash_is_refused(tmp_path, capsys):
    """130 channels: the packed factor holds 130 x 131 / 2 = 8,515 floats (34,060 B), and
    with the centre's 520 B that is beyond the Uno's 32 KB of flash."""
    csv = csv_of(tmp_path / "wide.csv", 130)
    out = tmp_path / "model"
    args = ["train", str(csv), "--detectors", "mahalanobis", "--out", str(out), "--quiet"]
    assert cli.main(args + ["--target", "uno"]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert not out.exists()
    assert "34,580 B of flash on uno" in err and "mahalanobis 34,580 B" in err
    assert "the factor has C(C+1)/2 floats" in err
    assert cli.main(args + ["--target", "cortex_m4f"]) == 0
