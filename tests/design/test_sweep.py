"""Dask sweep over scenarios x designs (synchronous scheduler and an in-process cluster)."""

import pytest

from celltrial.design import BOIN, ThreePlusThree, exact_operating_characteristics
from celltrial.design.figures import plot_selection
from celltrial.design.sweep import sweep

SCENARIOS = {"A": (0.05, 0.12, 0.30, 0.45, 0.60), "B": (0.3, 0.4, 0.5, 0.6, 0.7)}


def test_synchronous_sweep_and_plot(tmp_path):
    table = sweep({"boin": BOIN(), "3+3": ThreePlusThree(5)}, SCENARIOS, 50_000, seed=2,
                  client="synchronous")
    assert len(table) == 2 * 2 * 5
    three = table[(table["design"] == "3+3") & (table["scenario"] == "B")]
    exact = exact_operating_characteristics(ThreePlusThree(5), SCENARIOS["B"])
    assert three["selection_pct"].tolist() == pytest.approx(list(exact.selection_pct), abs=1.0)
    png = plot_selection(table, tmp_path / "sel.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_distributed_sweep_on_a_local_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        table = sweep([BOIN()], [SCENARIOS["A"]], 20_000, seed=2, client=client)
    same = sweep([BOIN()], [SCENARIOS["A"]], 20_000, seed=2, client="synchronous")
    assert table["selection_pct"].tolist() == same["selection_pct"].tolist()
    assert set(table["design"]) == {"design1"} and set(table["scenario"]) == {"scenario1"}
