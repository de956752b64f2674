"""The jobs on an engine: joblib's processes here (--workers N), or a Dask distributed
cluster (--scheduler tcp://host:port).  Both go through one joblib.Parallel; the flag only
chooses its backend (joblib's "dask" backend hands the calls to the cluster's workers).

Results come back as they finish, in any order: what is written does not depend on it
(each device's bundle is its own, fleet.json lists the devices sorted).  Jobs are drawn
from their iterator as workers free up (pre_dispatch), so the driver holds a few devices'
rows at a time, not the fleet's.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

from codegen.errors import UserError
from codegen.fleet import require

IN_FLIGHT = 2  # jobs per worker drawn ahead


def check_scheduler(address: str) -> str:
    """A --scheduler value: a Dask scheduler's address."""
    if not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise UserError(f"--scheduler {address!r} is not a Dask scheduler address; give one "
                        f"like tcp://host:8786")
    return address


@contextlib.contextmanager
def _backend(scheduler: str | None):
    """joblib's backend for the flag: loky, or dask on a client of the scheduler."""
    joblib = require("joblib", "fleet train")
    if scheduler is None:
        with joblib.parallel_config(backend="loky"):
            yield
        return
    distributed = require("distributed", "fleet train --scheduler")
    try:
        client = distributed.Client(scheduler, timeout="10s", set_as_default=False)
    except OSError as error:
        raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({error}); start it "
                        f"(dask scheduler, dask worker) or check the address") from None
    with client, joblib.parallel_config(backend="dask", client=client):
        yield


@contextlib.contextmanager
def engine(workers: int, scheduler: str | None):
    """A function mapping fn over jobs on the engine, results as they finish; the Dask
    scheduler is reached before it is given.  workers: processes with joblib; on Dask, the
    cluster's workers (-1 in joblib's terms) whatever it is given."""
    joblib = require("joblib", "fleet train")
    with _backend(scheduler):
        parallel = joblib.Parallel(n_jobs=-1 if scheduler else workers,
                                   return_as="generator_unordered",
                                   pre_dispatch=f"{IN_FLIGHT}*n_jobs", batch_size=1)

        def run(fn: Callable, jobs: Iterable) -> Iterator:
            return parallel(joblib.delayed(fn)(job) for job in jobs)
        yield run
