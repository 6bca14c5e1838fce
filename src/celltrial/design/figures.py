"""Figure of simulated operating characteristics: selection % per dose per scenario."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_selection(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Grouped bars (one panel per scenario, one bar colour per design) of selection % per
    dose from a `sweep`-shaped table (design, scenario, dose, selection_pct, p_true); PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scenarios = list(dict.fromkeys(table["scenario"]))
    designs = list(dict.fromkeys(table["design"]))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(4.2 * len(scenarios), 3.6),
                             squeeze=False, sharey=True)
    width = 0.8 / max(1, len(designs))
    for ax, sc in zip(axes[0], scenarios, strict=True):
        part = table[table["scenario"] == sc]
        doses = sorted(part["dose"].unique())
        x = np.arange(len(doses))
        for j, dn in enumerate(designs):
            rows = part[part["design"] == dn].set_index("dose").reindex(doses)
            ax.bar(x + (j - (len(designs) - 1) / 2) * width, rows["selection_pct"], width,
                   label=dn)
        p = part.drop_duplicates("dose").set_index("dose").reindex(doses)["p_true"]
        ax.set_xticks(x, [f"{d}\n({v:.2f})" for d, v in zip(doses, p, strict=True)])
        ax.set_title(str(sc))
        ax.set_xlabel("dose (true DLT probability)")
    axes[0][0].set_ylabel("selected as MTD / RP2D (%)")
    axes[0][-1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
