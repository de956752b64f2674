"""Values of an edited bundle that the headers carry as text are checked before they reach
the generated C (issue 18, item 1: the integers and comment text)."""

import copy
import json

import pytest

from codegen import bundle as bundle_mod
from codegen.cli import main
from codegen.emit import render as emit
from codegen.emit.literals import c_comment
from codegen.errors import UserError

INJECTION = "50\n#define mcua_is_finite(x) 1"


@pytest.mark.parametrize("detector, key", [("streaming_zscore", "window"),
                                           ("streaming_zscore", "min_count"),
                                           ("moving_average", "window"),
                                           ("moving_average", "min_count")])
@pytest.mark.parametrize("value", [INJECTION, "50", 0, 5000, 2.5, True, None])
def test_window_integers_must_be_integers_in_range(iot_bundle, detector, key, value):
    edited = copy.deepcopy(iot_bundle)
    edited.detectors[detector].params[key] = value
    with pytest.raises(UserError, match=f"{detector}.{key} must be an integer"):
        emit.render(edited)


def test_an_edited_bundle_json_is_refused_by_generate(iot_bundle, tmp_path, capsys):
    path = bundle_mod.save(iot_bundle, tmp_path / "model")
    doc = json.loads((path / "bundle.json").read_text())
    doc["detectors"]["streaming_zscore"]["params"]["window"] = INJECTION
    (path / "bundle.json").write_text(json.dumps(doc))
    assert main(["generate", str(path), "--out", str(tmp_path / "include")]) == 2
    assert "streaming_zscore.params.window is" in capsys.readouterr().err
    assert not (tmp_path / "include").exists()


def test_comment_text_cannot_leave_its_comment():
    assert c_comment("tflite-micro 0.1 (2025)") == "tflite-micro 0.1 (2025)"
    text = c_comment("x */\n#define A 1 /* é")
    assert "*/" not in text and "/*" not in text and "\n" not in text and text.isascii()
