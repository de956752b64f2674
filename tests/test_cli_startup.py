"""The CLI starts at once: --version and every --help load none of the heavy libraries
(each command imports them itself), and the help is for users: every option explained,
its default shown, no issue numbers."""

import argparse
import json
import subprocess
import sys

import pytest

from codegen.cli import build_parser

# What the commands import when they run, never to start or to print help.
HEAVY = ("sklearn", "scipy", "tensorflow", "tflite_micro", "ai_edge_litert", "jinja2",
         "plotly", "serial", "host_sim", "emlearn", "codegen.training.train", "codegen.emit.render",
         "codegen.evaluate", "joblib", "dask", "distributed", "pyarrow", "psutil")
COMMANDS = ("train", "generate", "verify", "bench", "demo", "evaluate", "score", "nab",
            "fleet")
FLEET_COMMANDS = ("train", "generate", "report", "bench")
PROBE = """
import json, sys
from codegen.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(argv: list[str]) -> list[str]:
    """The modules a fresh interpreter holds after main(argv) (its help or version)."""
    result = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], check=True,
                            capture_output=True, text=True)
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("argv", [["--version"], ["--help"]]
                         + [[command, "--help"] for command in COMMANDS]
                         + [["fleet", command, "--help"] for command in FLEET_COMMANDS])
def test_version_and_help_load_no_heavy_library(argv):
    loaded = modules_after(argv)
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []
    assert "codegen.cli" in loaded  # the probe ran the CLI


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_every_command_is_probed():
    assert tuple(subparsers(build_parser())) == COMMANDS
    assert tuple(subparsers(subparsers(build_parser())["fleet"])) == FLEET_COMMANDS


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of a command, or of a fleet command ("fleet train")."""
    parser = build_parser()
    for word in command.split():
        parser = subparsers(parser)[word]
    return parser


@pytest.mark.parametrize("command", COMMANDS + tuple(f"fleet {c}" for c in FLEET_COMMANDS))
def test_every_option_has_help_with_its_default(command):
    parser = command_parser(command)
    for action in parser._actions:
        assert action.help, f"{command} {action.dest} has no help"
        has_default = action.default not in (None, False, [], argparse.SUPPRESS)
        if has_default and not isinstance(action, argparse._HelpAction):
            assert "default" in parser._get_formatter()._get_help_string(action)
    text = parser.format_help()
    assert "(default: None)" not in text and "(default: False)" not in text


@pytest.mark.parametrize("command", (None,) + COMMANDS
                         + tuple(f"fleet {c}" for c in FLEET_COMMANDS))
def test_help_names_no_issue(command):
    text = (build_parser() if command is None else command_parser(command)).format_help()
    assert "issue " not in text.lower()


def test_a_default_is_shown_once():
    text = subparsers(build_parser())["bench"].format_help()
    assert "(default: build/bench.json)" in " ".join(text.split())
    train = " ".join(subparsers(build_parser())["train"].format_help().split())
    assert train.count("(default: iot)") == 1
