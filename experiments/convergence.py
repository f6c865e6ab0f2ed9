"""Fig. 2 of the paper: accuracy on original MNIST test images during training.

    python -m experiments.convergence               # the committed quick runs, every seed
    python -m experiments.convergence --preset=paper --seeds=0,1

Reads each run of pure_pgd, mix_pgd, logit_pairing, gandef_v1 and gandef (V2): its
curve.csv (accuracy on a fixed seeded test subset every curve_every optimizer steps,
gandef_tf/curve.py) when the selection's runs have one, drawn over training examples
seen with the mean and the min-max band over seeds; otherwise history.csv's one point per
epoch. Only finished runs (results.json saved) are drawn: a run still training has a
partial curve, which would bend the mean where it stops. Writes
figures/<preset>/fig2.{png,csv,json}: fig2.csv in long format, fig2.json with provenance
and each method's fluctuation (the std of the changes between consecutive points; over
the second half of training for a curve). The paper's claim
that GanDef V1 fluctuates more than V2 is stated in fig2.json's note only when these runs
show it.
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
    """("step", {method: {seed: [(step, examples, accuracy %), ...]}}) from curve.csv when
    any run has one, else ("epoch", {method: {seed: [(epoch, None, accuracy %), ...]}})
    from history.csv; rows without an accuracy are skipped, not filled, and runs without
    results.json (unfinished) too."""
    for unit, name, key in (("step", "curve.csv", "step"), ("epoch", "history.csv", "epoch")):
        out = {}
        for m in METHODS:
            for s in seeds:
                if not report.run_path(preset, dataset, m, s).exists():
                    continue
                pts = [(int(r[key]), int(r["examples"]) if unit == "step" else None,
                        100.0 * float(r["test_accuracy"]))
                       for r in report.read_history(preset, dataset, m, s, name)
                       if r.get("test_accuracy") not in (None, "")]
                if pts:
                    out.setdefault(m, {})[s] = sorted(pts)
        if out:
            return unit, out
    return "epoch", {}


def fluctuation(by_seed, second_half=False):
    """Spread of the changes between consecutive points (percentage points): the std of
    the differences, averaged over seeds (only over the second half of each run's points
    when second_half); None with fewer than 2 changes per seed."""
    stds, mean_abs = [], []
    for _, pts in sorted(by_seed.items()):
        if second_half:
            pts = [p for p in pts if p[0] > pts[-1][0] / 2]
        delta = np.diff([a for *_, a in pts])
        if len(delta) >= 2:
            stds.append(float(np.std(delta, ddof=1)))
            mean_abs.append(float(np.mean(np.abs(delta))))
    if not stds:
        return None
    return {"std_of_changes_pp": float(np.mean(stds)), "mean_abs_change_pp": float(np.mean(mean_abs)),
            "per_seed_std_pp": stds}


def summary(unit, by_seed):
    """Mean and min-max band over seeds at each x every seed reached (x: epoch, or step)."""
    xs = sorted(set.intersection(*({p[0] for p in pts} for pts in by_seed.values())))
    acc = {x: [a for pts in by_seed.values() for x2, _, a in pts if x2 == x] for x in xs}
    out = {f"{unit}s": xs, "seeds": sorted(by_seed),
           "mean_test_accuracy": [float(np.mean(acc[x])) for x in xs],
           "fluctuation": fluctuation(by_seed, second_half=unit == "step")}
    out["final_test_accuracy"] = out["mean_test_accuracy"][-1] if xs else None
    if unit == "step":
        examples = {x: e for pts in by_seed.values() for x, e, _ in pts}
        out.update(examples=[examples[x] for x in xs],
                   band_low=[float(min(acc[x])) for x in xs],
                   band_high=[float(max(acc[x])) for x in xs])
    return out


def v1_v2_note(stats, unit="epoch"):
    """The paper's claim (V1 fluctuates more than V2) stated only when these runs show it
    beyond the spread over seeds: V1's mean is higher and no seed of V2 fluctuates as much
    as the calmest seed of V1; the other methods' fluctuation is named for scale."""
    v1, v2 = stats.get("gandef_v1", {}).get("fluctuation"), stats.get("gandef", {}).get("fluctuation")
    if v1 is None or v2 is None:
        return f"Not enough {unit}s of both GanDef V1 and V2 to compare their fluctuation."
    a, b = v1["std_of_changes_pp"], v2["std_of_changes_pp"]
    what = ("step-to-step changes over the second half of training" if unit == "step"
            else "epoch-to-epoch changes")
    spread = lambda f: "{:.2f}-{:.2f}".format(min(f["per_seed_std_pp"]), max(f["per_seed_std_pp"]))
    others = ", ".join(f"{LABELS[m]} {st['fluctuation']['std_of_changes_pp']:.2f}"
                       for m, st in stats.items()
                       if m not in ("gandef", "gandef_v1") and st.get("fluctuation"))
    scale = f" Other methods: {others}." if others else ""
    if a > b and min(v1["per_seed_std_pp"]) > max(v2["per_seed_std_pp"]):
        return (f"In these runs GanDef V1 fluctuates more than GanDef V2, as the paper reports: "
                f"std of {what} {a:.2f} vs {b:.2f} percentage points.{scale}")
    if a > b:
        return (f"These runs do NOT show GanDef V1 fluctuating more than V2 beyond the spread "
                f"over seeds: std of {what} V1 {a:.2f} vs V2 {b:.2f} percentage points on "
                f"average, per seed V1 {spread(v1)}, V2 {spread(v2)}.{scale}")
    return (f"These runs do NOT show GanDef V1 fluctuating more than V2 (the paper's claim): "
            f"std of {what} V1 {a:.2f} vs V2 {b:.2f} percentage points.{scale}")


def render(preset, dataset, seeds):
    preset, (dataset,), seeds = report.check_selection(preset, [dataset], seeds)
    unit, data = curves(preset, dataset, seeds)
    loaded = report.load_results(preset, [dataset], seeds, METHODS)
    prov = report.provenance(preset, seeds, report.all_runs(loaded))
    prov["histories"] = {m: sorted(by_s) for m, by_s in data.items()}
    stats = {m: summary(unit, by_seed) for m, by_seed in data.items()}
    out_dir = report.figures_dir(preset)
    paths = {k: out_dir / f"fig2.{k}" for k in ("png", "csv", "json")}
    if unit == "step":
        report.write_csv(paths["csv"], ("method", "seed", "step", "examples", "test_accuracy"),
                         [(m, s, x, e, f"{a:.4f}") for m, by_s in data.items()
                          for s, pts in sorted(by_s.items()) for x, e, a in pts])
    else:
        report.write_csv(paths["csv"], ("method", "seed", "epoch", "test_accuracy"),
                         [(m, s, x, f"{a:.4f}") for m, by_s in data.items()
                          for s, pts in sorted(by_s.items()) for x, _, a in pts])
    report.write_json(paths["json"], {
        "provenance": prov, "dataset": dataset, "units": "percent", "x": unit,
        "missing_methods": [m for m in METHODS if m not in data],
        "methods": stats, "note": v1_v2_note(stats, unit)})
    report.save_figure(plot(dataset, unit, stats), paths["png"], prov)
    return paths


def plot(dataset, unit, stats):
    plt = report.pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.4))
    for m in METHODS:
        if m in stats:
            st, label = stats[m], f"{LABELS[m]} ({len(stats[m]['seeds'])} seed(s))"
            if unit == "step":
                line, = ax.plot(st["examples"], st["mean_test_accuracy"], lw=1.2, label=label)
                if len(st["seeds"]) > 1:
                    ax.fill_between(st["examples"], st["band_low"], st["band_high"],
                                    color=line.get_color(), alpha=0.2, lw=0)
            else:
                ax.plot(st["epochs"], st["mean_test_accuracy"], marker="o", ms=3, label=label)
    if not stats:
        ax.text(0.5, 0.5, "no training histories found", ha="center", transform=ax.transAxes)
    if unit == "epoch":
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("training examples seen (original)" if unit == "step" else "epoch")
    ax.set_ylabel(f"test accuracy on original {report.DATASET_NAMES[dataset]} images (%)")
    band = ", band: min-max over seeds" if unit == "step" else ""
    ax.set_title(f"Fig. 2: convergence ({report.DATASET_NAMES[dataset]}{band})")
    ax.grid(alpha=0.3)
    if stats:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv):
    preset, (dataset,), seeds = report.resolve_selection(FLAGS.preset, [FLAGS.dataset], FLAGS.seeds)
    report.require_runs(preset, [dataset], seeds, METHODS, "history.csv")
    paths = render(preset, dataset, seeds)
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    for line in report.missing_lines(preset, [dataset], seeds, METHODS, [dataset]):
        print(f"[{preset}] {line}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
