"""Fig. 2 of the paper: test accuracy on original MNIST images after each training epoch.

    python -m experiments.convergence               # the committed quick runs, every seed
    python -m experiments.convergence --preset=paper --seeds=0,1

Reads history.csv of pure_pgd, mix_pgd, logit_pairing, gandef_v1 and gandef (V2) and
writes figures/<preset>/fig2.{png,csv,json}. fig2.csv is long format (one row per
method, seed, epoch); fig2.json holds provenance and, per method, the spread of its
epoch-to-epoch changes. The paper's claim that GanDef V1 fluctuates more than V2 is
stated in fig2.json's note only when these runs show it.
"""

import numpy as np
from absl import flags

from experiments import cli
from gandef_tf import report

FLAGS = flags.FLAGS
METHODS = ("pure_pgd", "mix_pgd", "logit_pairing", "gandef_v1", "gandef")
LABELS = {"pure_pgd": "Pure PGD", "mix_pgd": "Mix PGD", "logit_pairing": "Logit Pairing",
          "gandef_v1": "GanDef V1", "gandef": "GanDef V2"}


def define_flags():
    flags.DEFINE_string("preset", "quick", "Preset whose runs to read: quick (the committed "
                        "CPU-scale runs), paper or smoke.")
    flags.DEFINE_string("dataset", "mnist", "Dataset (the paper's Fig. 2 is MNIST).")
    flags.DEFINE_string("seeds", "all", "Seeds, comma separated; the plot shows their mean; "
                        "all: every seed found.")


def curves(preset, dataset, seeds):
    """{method: {seed: [(epoch, test accuracy %), ...]}} from history.csv; rows without
    a test accuracy (a run evaluated without validation data) are skipped, not filled."""
    out = {}
    for m in METHODS:
        for s in seeds:
            pts = [(int(r["epoch"]), 100.0 * float(r["test_accuracy"]))
                   for r in report.read_history(preset, dataset, m, s)
                   if r.get("test_accuracy") not in (None, "")]
            if pts:
                out.setdefault(m, {})[s] = sorted(pts)
    return out


def fluctuation(by_seed):
    """Spread of the epoch-to-epoch change of test accuracy (percentage points): the std
    of the differences, averaged over seeds; None with fewer than 2 changes per seed."""
    stds, mean_abs = [], []
    for pts in by_seed.values():
        delta = np.diff([a for _, a in pts])
        if len(delta) >= 2:
            stds.append(float(np.std(delta, ddof=1)))
            mean_abs.append(float(np.mean(np.abs(delta))))
    if not stds:
        return None
    return {"std_of_changes_pp": float(np.mean(stds)), "mean_abs_change_pp": float(np.mean(mean_abs))}


def v1_v2_note(stats):
    v1, v2 = stats.get("gandef_v1", {}).get("fluctuation"), stats.get("gandef", {}).get("fluctuation")
    if v1 is None or v2 is None:
        return "Not enough epochs of both GanDef V1 and V2 to compare their fluctuation."
    a, b = v1["std_of_changes_pp"], v2["std_of_changes_pp"]
    if a > b:
        return (f"In these runs GanDef V1 fluctuates more than GanDef V2, as the paper reports: "
                f"std of epoch-to-epoch changes {a:.2f} vs {b:.2f} percentage points.")
    return (f"These runs do NOT show GanDef V1 fluctuating more than V2 (the paper's claim): "
            f"std of epoch-to-epoch changes V1 {a:.2f} vs V2 {b:.2f} percentage points.")


def render(preset, dataset, seeds):
    preset, (dataset,), seeds = report.check_selection(preset, [dataset], seeds)
    data = curves(preset, dataset, seeds)
    loaded = report.load_results(preset, [dataset], seeds, METHODS)
    prov = report.provenance(preset, seeds, report.all_runs(loaded))
    prov["histories"] = {m: sorted(by_s) for m, by_s in data.items()}
    stats = {}
    for m, by_seed in data.items():
        epochs = sorted({e for pts in by_seed.values() for e, _ in pts})
        mean = [float(np.mean([a for pts in by_seed.values() for e2, a in pts if e2 == e]))
                for e in epochs]
        stats[m] = {"epochs": epochs, "mean_test_accuracy": mean, "seeds": sorted(by_seed),
                    "final_test_accuracy": mean[-1], "fluctuation": fluctuation(by_seed)}
    out_dir = report.figures_dir(preset)
    paths = {k: out_dir / f"fig2.{k}" for k in ("png", "csv", "json")}
    report.write_csv(paths["csv"], ("method", "seed", "epoch", "test_accuracy"),
                     [(m, s, e, f"{a:.4f}") for m, by_s in data.items()
                      for s, pts in sorted(by_s.items()) for e, a in pts])
    report.write_json(paths["json"], {
        "provenance": prov, "dataset": dataset, "units": "percent",
        "missing_methods": [m for m in METHODS if m not in data],
        "methods": stats, "note": v1_v2_note(stats)})
    report.save_figure(plot(dataset, stats), paths["png"], prov)
    return paths


def plot(dataset, stats):
    plt = report.pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.4))
    for m in METHODS:
        if m in stats:
            st = stats[m]
            ax.plot(st["epochs"], st["mean_test_accuracy"], marker="o", ms=3,
                    label=f"{LABELS[m]} ({len(st['seeds'])} seed(s))")
    if not stats:
        ax.text(0.5, 0.5, "no training histories found", ha="center", transform=ax.transAxes)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test accuracy on original {report.DATASET_NAMES[dataset]} images (%)")
    ax.set_title(f"Fig. 2: convergence ({report.DATASET_NAMES[dataset]})")
    ax.grid(alpha=0.3)
    if stats:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv):
    preset, (dataset,), seeds = report.resolve_selection(FLAGS.preset, [FLAGS.dataset], FLAGS.seeds)
    paths = render(preset, dataset, seeds)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    for line in report.missing_lines(preset, [dataset], seeds, METHODS, [dataset]):
        print(f"[{preset}] {line}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
