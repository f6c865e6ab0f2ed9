"""Fig. 3 of the paper: Table 2 as grouped bars, one panel per dataset.

    python -m experiments.fig3 --preset=quick --datasets=mnist --seeds=0

Writes figures/<preset>/fig3.{png,csv,json}. The bars are the numbers of table2.csv
(computed by the same function, report.table2_cells); error bars are the sample std
over seeds; the paper's values are drawn as black ticks, labelled as the paper's (the
rows beyond the paper, after PGD-2, have none). A missing run has no bar
and is listed in fig3.json, never drawn at a filled-in height.
"""

import numpy as np

from experiments.table2 import run
from gandef_tf import report
from gandef_tf.report import COLUMN_NAMES, COLUMNS, DATASET_NAMES, EXAMPLE_NAMES, TABLE_ROWS, fmt


def plot(datasets, cells):
    plt = report.pyplot()

    fig, axes = plt.subplots(len(datasets), 1, figsize=(12, 3.6 * len(datasets)), squeeze=False)
    width = 0.8 / len(COLUMNS)
    colors = plt.get_cmap("tab10").colors
    for ax, d in zip(axes[:, 0], datasets):
        mine = {(c["example"], c["column"]): c for c in cells if c["dataset"] == d}
        for j, col in enumerate(COLUMNS):
            xs = np.arange(len(TABLE_ROWS)) + (j - (len(COLUMNS) - 1) / 2) * width
            got = [(x, mine[(e, col)]) for x, e in zip(xs, TABLE_ROWS)
                   if mine[(e, col)]["mean"] is not None]
            if got:
                ax.bar([x for x, _ in got], [c["mean"] for _, c in got], width,
                       yerr=[c["std"] if c["n"] > 1 else 0 for _, c in got],
                       color=colors[j], label=COLUMN_NAMES[col], capsize=2)
            paper = [(x, mine[(e, col)]["paper"]) for x, e in zip(xs, TABLE_ROWS)
                     if mine[(e, col)]["paper"] is not None]
            ax.scatter(*zip(*paper), marker="_", s=60, color="black", zorder=3,
                       label="paper (Table 2)" if j == 0 else None)
        if not any(c["mean"] is not None for c in mine.values()):
            ax.text(0.5, 0.5, "no runs found: only the paper's values are shown",
                    ha="center", transform=ax.transAxes, bbox=dict(facecolor="white"))
        ax.set_xticks(range(len(TABLE_ROWS)), [EXAMPLE_NAMES[e] for e in TABLE_ROWS])
        ax.set_ylim(0, 119)  # headroom for the legend above the bars
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{DATASET_NAMES[d]}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, ncol=7, loc="upper center")
    fig.suptitle("Fig. 3: test accuracy on original and adversarial examples "
                 "(the rows after PGD-2: beyond the paper)")
    fig.tight_layout()
    return fig


def render(preset, datasets, seeds):
    preset, datasets, seeds = report.check_selection(preset, datasets, seeds)
    loaded = report.load_results(preset, datasets, seeds)
    cells = report.table2_cells(loaded, datasets)
    prov = report.provenance(preset, seeds, report.all_runs(loaded))
    out_dir = report.figures_dir(preset)
    paths = {k: out_dir / f"fig3.{k}" for k in ("png", "csv", "json")}
    report.write_csv(paths["csv"], ("dataset", "examples", "method", "accuracy", "std",
                                    "n_seeds", "paper"),
                     [(DATASET_NAMES[c["dataset"]], EXAMPLE_NAMES[c["example"]],
                       COLUMN_NAMES[c["column"]], fmt(c["mean"]),
                       fmt(c["std"]) if c["n"] else "missing", c["n"], fmt(c["paper"], none=""))
                      for c in cells])
    report.write_json(paths["json"], {
        "provenance": prov, "units": "percent",
        "missing": sorted({f"{c['dataset']}/{c['column']}" for c in cells if c["mean"] is None})})
    report.save_figure(plot(datasets, cells), paths["png"], prov)
    return paths


if __name__ == "__main__":
    run(render)
