"""What a row holding a missing reading does: the --missing policy of train, score, evaluate.

A missing reading is an empty cell (a logger's dropout), NaN, or +-Inf (a value beyond
float32 reads as one).  The policies:

  flag    (default) as the generated C does when it is fed the row: the sample is flagged,
          scores +Inf, and no detector lets it into its statistics (a streaming detector's
          state and a moving average's window stay as they were; each autoencoder window
          that holds it is flagged); training learns nothing from it.
  skip    as a firmware that does not feed an incomplete sample to the detectors: the row
          is not scored (empty score and flag cells in score's output; evaluate leaves it
          out), and the rows either side of it meet in the streams and windows.
  refuse  any missing reading is an error naming the rows.

There is no "hold last value": a held reading is an invented one, and a sensor that drops out
for good would read as a machine frozen in its last state, the fault the detectors look for.
"""

from __future__ import annotations

import numpy as np

from codegen.data.dataset import Dataset
from codegen.errors import UserError

POLICIES = ("flag", "skip", "refuse")
DEFAULT = "flag"
SHOWN_ROWS = 20
HELP = ("what a row with a missing reading (empty cell, nan, inf) does: flag (as the device "
        "does: flagged, score inf, learned from by nothing), skip (not fed to the detectors), "
        "refuse (an error naming the rows) (default: flag)")


def rows_shown(rows: np.ndarray, first: int = 1) -> str:
    """The first SHOWN_ROWS of these 0-based row indices as data-row numbers (from first)."""
    shown = ", ".join(str(int(i) + first) for i in rows[:SHOWN_ROWS])
    return shown + (f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else "")


def check(dataset: Dataset, policy: str, first: int | None = None) -> np.ndarray:
    """The indices of the dataset's rows holding a missing reading; under refuse, an error
    when there is one.  first: when the dataset is a part of a file read in parts, the
    data-row number of its first row (the error then names the part's span)."""
    if policy not in POLICIES:
        raise UserError(f"--missing {policy!r} is not a policy; choose from "
                        f"{', '.join(POLICIES)}")
    rows = np.flatnonzero(dataset.missing)
    if rows.size and policy == "refuse":
        span = ("" if first is None else
                f" of data rows {first:,} to {first + len(dataset.values) - 1:,}")
        raise UserError(f"{dataset.name}: {rows.size} row(s){span} hold a missing reading (empty "
                        f"cell, nan or inf): data rows {rows_shown(rows, first or 1)}; fill them "
                        f"in, or give --missing flag (as the device does) or --missing skip")
    return rows


def apply(dataset: Dataset, policy: str) -> Dataset:
    """The rows the detectors are fed under the policy: all of them under flag, the complete
    ones under skip (refuse: an error when a row is not complete)."""
    rows = check(dataset, policy)
    if policy == "skip" and rows.size:
        return dataset.rows(~dataset.missing)
    return dataset
