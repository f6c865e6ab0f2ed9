"""Beyond the paper: GanDef's discriminator as a detector, original vs each attack's examples.

    python -m experiments.roc --preset=quick --datasets=mnist --seeds=0

For each dataset with a gandef run, the ROC of the discriminator's score D(z) on original
test examples (negatives) against each attack's examples (positives), an example being
flagged when D(z) >= tau (GanDef-Comb's rule); its AUC (trapezoid rule, ties counted
half); and the tau at a 5% false-positive rate on original examples, with the share of
that attack's examples flagged there. Everything comes from the saved predictions.npz;
no attack is run. Writes figures/<preset>/roc.{png,csv,json}; roc.json is
{dataset: {attack: {"seeds": {seed: {auc, tau_at_5pct_fpr, fpr, tpr}}, "auc_mean",
"auc_std"}}} plus "provenance"; roc.csv has dataset,attack,seed,auc,tau_at_5pct_fpr,
fpr_at_tau,tpr_at_tau.
"""

import numpy as np

from experiments.table2 import run
from gandef_tf import report, scoring
from gandef_tf.report import DATASET_NAMES, EXAMPLE_NAMES

TARGET_FPR = 0.05


def detector_stats(pred):
    """{attack: (fpr, tpr, auc, (tau, fpr_at_tau, tpr_at_tau))} of one run's predictions."""
    out = {}
    for a in scoring.attacks(pred):
        if f"disc_{a}" in pred:
            neg, pos = pred["disc_original"], pred[f"disc_{a}"]
            fpr, tpr, _ = scoring.roc(neg, pos)
            out[a] = (fpr, tpr, scoring.auc(fpr, tpr), scoring.tau_at_fpr(neg, pos, TARGET_FPR))
    return out


def collect(preset, datasets, loaded):
    """{dataset: {seed: detector_stats}} for the gandef runs whose predictions exist."""
    out = {}
    for d in datasets:
        for seed in sorted(loaded.get(d, {}).get("gandef", {})):
            path = report.run_path(preset, d, "gandef", seed, "predictions.npz")
            if path.exists():
                pred = scoring.load_predictions(path)
                if "disc_original" in pred:
                    out.setdefault(d, {})[seed] = detector_stats(pred)
    return out


def plot(stats):
    plt = report.pyplot()
    fig, axes = plt.subplots(1, max(1, len(stats)), figsize=(5.5 * max(1, len(stats)), 4.8),
                             squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, (d, by_seed) in zip(axes[0], stats.items()):
        first = min(by_seed)
        for i, (a, (fpr, tpr, auc, (tau, _, tpr_at))) in enumerate(by_seed[first].items()):
            aucs = [s[a][2] for s in by_seed.values() if a in s]
            ax.plot(fpr, tpr, color=colors[i % 10], lw=1.4,
                    label=f"{EXAMPLE_NAMES.get(a, a)}: AUC {np.mean(aucs):.3f}"
                          + (f" ± {np.std(aucs, ddof=1):.3f}" if len(aucs) > 1 else "")
                          + f"; τ@5%FPR {tau:.3f} → TPR {tpr_at:.2f}")
        ax.axvline(TARGET_FPR, color="0.5", ls=":", lw=1, label="5% FPR on original examples")
        ax.plot([0, 1], [0, 1], color="0.8", lw=0.8)
        ax.set_title(f"{DATASET_NAMES[d]}: discriminator, original vs attack (seed {first})")
        ax.set_xlabel("false-positive rate (original examples flagged)")
        ax.set_ylabel("true-positive rate (adversarial examples flagged)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="lower right")
    if not stats:
        axes[0, 0].text(0.5, 0.5, "no gandef runs with predictions found", ha="center",
                        transform=axes[0, 0].transAxes)
    fig.suptitle("GanDef's discriminator as a detector (beyond the paper; AUC mean over seeds)")
    fig.tight_layout()
    return fig


def render(preset, datasets, seeds):
    preset, datasets, seeds = report.check_selection(preset, datasets, seeds)
    loaded = report.load_results(preset, datasets, seeds, methods=("gandef",))
    stats = collect(preset, datasets, loaded)
    prov = report.provenance(preset, seeds, report.all_runs(loaded))
    out_dir = report.figures_dir(preset)
    paths = {k: out_dir / f"roc.{k}" for k in ("png", "csv", "json")}
    rows, out = [], {}
    for d, by_seed in stats.items():
        for seed, by_a in by_seed.items():
            for a, (_, _, auc, (tau, fpr_at, tpr_at)) in by_a.items():
                rows.append((d, a, seed, f"{auc:.4f}", f"{tau:.6g}", f"{fpr_at:.4f}", f"{tpr_at:.4f}"))
                entry = out.setdefault(d, {}).setdefault(a, {"seeds": {}})
                entry["seeds"][str(seed)] = {"auc": auc, "tau_at_5pct_fpr": tau,
                                             "fpr": fpr_at, "tpr": tpr_at}
        for entry in out.get(d, {}).values():
            mean, std, _ = report.aggregate(v["auc"] for v in entry["seeds"].values())
            entry.update(auc_mean=mean, auc_std=std)
    report.write_csv(paths["csv"], ("dataset", "attack", "seed", "auc", "tau_at_5pct_fpr",
                                    "fpr_at_tau", "tpr_at_tau"), rows)
    report.write_json(paths["json"], {**out, "provenance": prov,
                                      "target_fpr": TARGET_FPR,
                                      "rule": "flagged when D(z) >= tau; negatives: original "
                                              "test examples; positives: that attack's"})
    report.save_figure(plot(stats), paths["png"], prov)
    return paths


if __name__ == "__main__":
    run(render, ("gandef",))
