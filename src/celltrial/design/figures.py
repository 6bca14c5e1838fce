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


def plot_virtual_oc(table: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Virtual-trial OCs (`celltrial.design.virtual_oc.oc_table`): one panel per design,
    bars of % selecting each dose (MTD/OBD) and % choosing it as RP2D, against the true
    DLT and response curves of the virtual population (lines, right axis); PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    designs = list(dict.fromkeys(table["design"]))
    fig, axes = plt.subplots(1, len(designs), figsize=(3.8 * len(designs), 3.6),
                             squeeze=False, sharey=True)
    for j, (ax, dn) in enumerate(zip(axes[0], designs, strict=True)):
        part = table[table["design"] == dn].sort_values("dose")
        x = np.arange(len(part))
        ax.bar(x - 0.2, part["selection_pct"], 0.4, label="selected (MTD/OBD)")
        ax.bar(x + 0.2, part["rp2d_pct"], 0.4, label="RP2D")
        ax.set_xticks(x, [str(d) for d in part["dose"]])
        ax.set_xlabel("dose level")
        stop = float(part["stop_pct"].iloc[0])
        ax.set_title(f"{dn}\n(no dose {stop:.0f}%)", fontsize="small")
        twin = ax.twinx()
        twin.plot(x, part["p_dlt_true"], "k-o", ms=3, label="true P(DLT)")
        twin.plot(x, part["p_response_true"], "g--s", ms=3, label="true P(response)")
        twin.set_ylim(0, 1)
        if j < len(designs) - 1:
            twin.set_yticklabels([])
        else:
            twin.set_ylabel("true probability")
    axes[0][0].set_ylabel("% of trials")
    handles = axes[0][0].get_legend_handles_labels()
    lines = twin.get_legend_handles_labels()
    axes[0][0].legend(handles[0] + lines[0], handles[1] + lines[1], fontsize="x-small",
                      loc="upper right")
    if title:
        fig.suptitle(title, fontsize="small")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
