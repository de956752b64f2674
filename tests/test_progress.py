"""The progress of a long command: step i/N, elapsed, and an ETA from the mean time per
step so far; rewritten in place on a terminal, occasional lines in a log."""

import io

import numpy as np

from codegen.progress import CLEAR_LINE, Progress, duration


class Clock:
    """A clock the test moves."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_durations():
    assert [duration(s) for s in (0, 0.4, 12.6, 59.4, 60, 185, 3599, 3600, 3725)] == [
        "0 s", "0 s", "13 s", "59 s", "1 min 00 s", "3 min 05 s", "59 min 59 s",
        "1 h 00 min", "1 h 02 min"]


def test_the_eta_is_the_mean_step_time_times_the_steps_left():
    clock, out = Clock(), io.StringIO()
    progress = Progress(4, "bench", out, every=0, clock=clock)
    for seconds, what in ((10, "uno zscore"), (30, ""), (20, "rv32imc kmeans"), (40, "last")):
        clock.now += seconds
        progress.step(what)
    assert out.getvalue().splitlines() == [
        "bench: step 1/4, 10 s elapsed, ETA 30 s (uno zscore)",
        "bench: step 2/4, 40 s elapsed, ETA 40 s",
        "bench: step 3/4, 1 min 00 s elapsed, ETA 20 s (rv32imc kmeans)",
        "bench: step 4/4, 1 min 40 s elapsed, done (last)"]


def test_a_log_gets_the_first_and_last_step_and_one_line_per_interval():
    clock, out = Clock(), io.StringIO()
    progress = Progress(10, "nab", out, every=10, clock=clock)
    for _ in range(10):
        clock.now += 4
        progress.step()
    steps = [line.split(",")[0] for line in out.getvalue().splitlines()]
    assert steps == ["nab: step 1/10", "nab: step 4/10", "nab: step 7/10", "nab: step 10/10"]


def test_a_terminal_gets_one_line_rewritten():
    clock, out = Clock(), Terminal()
    progress = Progress(3, "verify uno", out, clock=clock)
    for _ in range(3):
        clock.now += 1
        progress.step()
    text = out.getvalue()
    assert text.count(CLEAR_LINE) == 3 and text.count("\n") == 1 and text.endswith("done\n")


def test_verify_counts_a_step_per_chunk_of_each_input(iot_bundle, capsys):
    """compare's progress (verify --target): the chunks of every kind of input, to the last."""
    from codegen.verify.compare import compare
    from codegen.verify.engines import PythonEngine

    class Chunked(PythonEngine):
        name, chunk = "chunked", 300

    inputs = {"random": np.zeros((700, 3), np.float32), "extreme": np.ones((300, 3), np.float32)}
    assert compare(iot_bundle, Chunked(iot_bundle), inputs, progress=True).ok
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("verify chunked: step 1/4, ") and lines[0].endswith(
        "(random samples 0..299)")
    assert lines[-1].startswith("verify chunked: step 4/4, ") and lines[-1].endswith(
        ", done (extreme samples 0..299)")
