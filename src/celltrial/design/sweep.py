"""Operating characteristics over many scenarios x designs with Dask.

`sweep(designs, scenarios, n_trials, seed, client)` submits one `simulate` task per
(design, scenario) pair. ``client``: None starts a local cluster (closed afterwards); a
string is the address of any running Dask scheduler ("tcp://host:8786", e.g. a
dask-jobqueue SLURM cluster); "synchronous" runs in this process (tests, debugging); a
`distributed.Client` is used as given. Every task uses the same ``seed`` (common random
numbers across designs), recorded in the result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from celltrial.design.data import DoseDesign
from celltrial.design.simulate import SimulationResult, simulate
from celltrial.errors import invalid


def _named(items: Mapping[str, Any] | Sequence[Any], prefix: str) -> dict[str, Any]:
    if isinstance(items, Mapping):
        return dict(items)
    return {f"{prefix}{i + 1}": v for i, v in enumerate(items)}


def _task(design: DoseDesign, p: tuple[float, ...], n_trials: int, seed: int, backend: str,
          threads: int | None) -> SimulationResult:
    return simulate(design, p, n_trials, seed=seed, backend=backend, threads=threads)


def sweep(designs: Mapping[str, DoseDesign] | Sequence[DoseDesign],
          scenarios: Mapping[str, Sequence[float]] | Sequence[Sequence[float]], n_trials: int,
          seed: int = 1, client: Any = None, backend: str = "numpy",
          threads: int | None = 1) -> pd.DataFrame:
    """Long table: one row per design x scenario x dose (selection %, mean patients, DLTs,
    stop %, trials, seed, seconds)."""
    named_designs = _named(designs, "design")
    named_scenarios = {k: tuple(float(x) for x in v)
                       for k, v in _named(scenarios, "scenario").items()}
    if not named_designs or not named_scenarios:
        raise invalid("sweep", "empty", "at least one design and one scenario")
    pairs = [(dn, sn) for dn in named_designs for sn in named_scenarios]
    args = [(named_designs[dn], named_scenarios[sn], n_trials, seed, backend, threads)
            for dn, sn in pairs]
    if isinstance(client, str) and client == "synchronous":
        import dask

        results = list(dask.compute(*[dask.delayed(_task)(*a) for a in args],
                                    scheduler="synchronous"))
    else:
        results = _distributed(args, client)
    rows = []
    for (dn, sn), res in zip(pairs, results, strict=True):
        for i in range(len(res.selection_pct)):
            rows.append({"design": dn, "scenario": sn, "dose": i + 1,
                         "p_true": res.p_true[i], "selection_pct": res.selection_pct[i],
                         "mean_patients": res.mean_patients[i], "mean_dlts": res.mean_dlts[i],
                         "stop_pct": res.stop_pct, "n_trials": res.n_trials, "seed": res.seed,
                         "seconds": res.seconds})
    return pd.DataFrame(rows)


@contextlib.contextmanager
def dask_client(client: Any, **cluster: Any) -> Iterator[Any]:
    """A `distributed.Client` for ``client``: None starts a `LocalCluster(**cluster)` (closed
    on exit), a string connects to that scheduler address (the connection closed on exit), a
    client is used as given (left open)."""
    from dask.distributed import Client, LocalCluster

    own_cluster = own_client = None
    if client is None:
        own_cluster = LocalCluster(**cluster)
        client = own_client = Client(own_cluster)
    elif isinstance(client, str):
        client = own_client = Client(client)
    try:
        yield client
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()


def _distributed(args: list[tuple[Any, ...]], client: Any) -> list[SimulationResult]:
    with dask_client(client, processes=False) as c:
        futures = [c.submit(_task, *a, pure=False) for a in args]
        return list(c.gather(futures))
