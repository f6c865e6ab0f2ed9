"""Beyond the paper: GanDef's trade-off gamma, swept; original and PGD-1 accuracy of GanDef
and GanDef-Comb against gamma.

    python -m experiments.gamma_sweep --gammas=0,0.5,1,2,4 --preset=quick --dataset=mnist
    python -m experiments.gamma_sweep --gammas=0.5,2 --forms=equation,authors_code
    python -m experiments.gamma_sweep --render_only     # only redraw from saved runs

A sweep estimated above 30 minutes on this device, or one that would retrain a point over
its saved results, is refused with one line that prices it; --train starts it.

Each gamma is a GanDef run (trained and evaluated under PGD-1 if missing, reused when
finished) in its own folders <method>-gamma<g> (Config.tag; listed among its deviations),
so it never collides with the normal gandef run; the preset's own gamma (paper 2, quick 0.5) IS the normal
gandef run. `--forms` sweeps GanDef's loss forms too (config.GANDEF_LOSSES): a form other
than the preset's adds `_<form>` to the tag; the figure draws every form that has runs. gamma = 0 drops the discriminator term from the classifier's loss, which
leaves Mix PGD's loss (the paper's remark), though the discriminator is still trained
beside it and GanDef-Comb still uses it. Writes figures/<preset>/gamma_sweep.{png,csv,json}
(mean ± sample std over seeds; a missing run is "missing", never filled in).
"""

from absl import flags

from experiments import cli
from experiments.plan import refusal
from gandef_tf import GandefError, plan, report, runs
from gandef_tf.config import GANDEF_LOSSES, get_config

FLAGS = flags.FLAGS
SWEEP_ATTACKS = ("pgd1",)
SERIES = (("accuracy", "original", "GanDef, original"), ("accuracy", "pgd1", "GanDef, PGD-1"),
          ("comb", "original", "GanDef-Comb, original"), ("comb", "pgd1", "GanDef-Comb, PGD-1"))


def define_flags():
    flags.DEFINE_string("preset", "quick", "Preset: paper, quick or smoke.")
    flags.DEFINE_string("dataset", "mnist", "Dataset.")
    flags.DEFINE_string("seeds", "0", "Seeds, comma separated; several give mean ± std.")
    flags.DEFINE_string("gammas", "0,0.5,1,2,4", "GanDef trade-offs gamma >= 0, comma separated.")
    flags.DEFINE_list("forms", None, "GanDef loss forms to sweep (equation, authors_code); "
                      "default: the preset's (rendering: every form with runs).")
    flags.DEFINE_bool("render_only", False, "Draw from saved runs; train and evaluate nothing.")
    flags.DEFINE_bool("train", False, "Start the sweep even when it is estimated above 30 "
                      "minutes on this device, or retrains a point over its saved results.")
    flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bars, 2 lines.")


def parse_gammas(text):
    try:
        gammas = [float(g) for g in report.parse_list(text)]
    except ValueError:
        raise GandefError(f"gammas must be numbers, got {text!r}") from None
    if not gammas or min(gammas) < 0:
        raise GandefError(f"gammas must be numbers >= 0, got {text!r}")
    return sorted(set(gammas))


def variant(preset, dataset, gamma, seed=0, form=None, **overrides):
    """The config of one point: the normal gandef run at the preset's gamma and loss form,
    else a run tagged gamma<g> (and _<form> for a form other than the preset's)."""
    base = get_config(preset, dataset, "gandef", seed, **overrides)
    form = form or base.gandef_loss
    if form not in GANDEF_LOSSES:
        raise GandefError(f"unknown GanDef loss form {form!r}; choose from {GANDEF_LOSSES}")
    tag = "" if (gamma, form) == (base.gamma, base.gandef_loss) else (
        f"gamma{gamma:g}" + ("" if form == base.gandef_loss else f"_{form}"))
    cfg = get_config(preset, dataset, "gandef", seed, gamma=gamma, tag=tag, gandef_loss=form,
                     eval_attacks=SWEEP_ATTACKS, **overrides)
    # A saved point keeps its precision, as any run does (cli.keep_stored_precision).
    return cfg if overrides.get("precision") else cli.keep_stored_precision(cfg)


def sweep(preset, dataset, gammas, seeds, verbose=1, allow_train=False, forms=None,
          **overrides):
    """Train (or reuse) and evaluate every (gamma, seed) of each form; {(gamma, seed):
    results dict} for one form, {(gamma, form, seed): ...} for several. The whole sweep is
    priced once, before its first run: experiments.plan.refusal's one line unless allow_train."""
    forms = forms or [None]
    cfgs = {(g, f, s) if len(forms) > 1 else (g, s): variant(preset, dataset, g, s, f, **overrides)
            for g in gammas for f in forms for s in seeds}
    why_not = refusal([plan.status(c) for c in cfgs.values()], allow_train)
    if why_not:
        raise GandefError(why_not)
    from experiments.evaluate import evaluate  # TensorFlow only when something may train

    return {k: evaluate(c, verbose=verbose, allow_train=True) for k, c in cfgs.items()}


def points(preset, dataset, gammas, seeds, form=None, **overrides):
    """One dict per gamma: form, tag, seeds found, and (mean, std) in % of each series."""
    out = []
    for g in gammas:
        cfg = variant(preset, dataset, g, 0, form, **overrides)
        tag = cfg.tag
        found = {s: runs.read_json(p) for s in seeds
                 if (p := report.run_path(preset, dataset, "gandef", s, tag=tag)).exists()}
        point = {"gamma": g, "form": cfg.gandef_loss, "tag": tag, "seeds": sorted(found)}
        for key, example, _ in SERIES:
            accs = [r.get("accuracy", {}) if key == "accuracy" else
                    (r.get("comb") or {}).get("accuracy", {}) for r in found.values()]
            vals = [100 * acc[example] for acc in accs if example in acc]
            mean, std, n = report.aggregate(vals)
            point[f"{key}_{example}"] = {"mean": mean, "std": std, "n": n}
        out.append(point)
    return out


def plot(dataset, pts):
    plt = report.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    forms = sorted({p["form"] for p in pts})
    for form, marker in zip(forms, "os"):
        for key, example, label in SERIES:
            got = [(p["gamma"], p[f"{key}_{example}"]) for p in pts
                   if p["form"] == form and p[f"{key}_{example}"]["n"]]
            if got:
                ax.errorbar([g for g, _ in got], [c["mean"] for _, c in got],
                            yerr=[c["std"] for _, c in got], marker=marker, capsize=3,
                            label=label + (f" ({form})" if len(forms) > 1 else ""),
                            ls=("-" if key == "accuracy" else "--") if marker == "o" else
                            (":" if key == "accuracy" else "-."),
                            color="C0" if example == "original" else "C3")
    if any(p[f"{k}_{e}"]["n"] for p in pts for k, e, _ in SERIES):
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no runs found", ha="center", transform=ax.transAxes)
    ax.set_xlabel("γ (GanDef's trade-off; 0 = Mix PGD's classifier loss)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{report.DATASET_NAMES[dataset]}: GanDef vs γ (beyond the paper)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def forms_with_runs(preset, dataset, gammas, seeds, **overrides):
    """The preset's form, and every other form that has at least one run of the sweep."""
    base = get_config(preset, dataset, "gandef", **overrides).gandef_loss
    return [f for f in GANDEF_LOSSES if f == base or any(
        p["seeds"] for p in points(preset, dataset, gammas, seeds, f, **overrides))]


def render(preset, dataset, gammas, seeds, forms=None, **overrides):
    preset, (dataset,), seeds = report.check_selection(preset, [dataset], seeds)
    gammas = parse_gammas(gammas) if isinstance(gammas, str) else sorted(set(gammas))
    forms = forms or forms_with_runs(preset, dataset, gammas, seeds, **overrides)
    pts = [p for f in forms for p in points(preset, dataset, gammas, seeds, f, **overrides)]
    found = [runs.read_json(report.run_path(preset, dataset, "gandef", s, tag=p["tag"]))
             for p in pts for s in p["seeds"]]
    prov = report.provenance(preset, seeds, found)
    out_dir = report.figures_dir(preset)
    paths = {k: out_dir / f"gamma_sweep.{k}" for k in ("png", "csv", "json")}
    report.write_csv(paths["csv"], ("dataset", "gamma", "form", "run", "n_seeds")
                     + tuple(f"{k}_{e}" for k, e, _ in SERIES),
                     [(dataset, f"{p['gamma']:g}", p["form"],
                       runs.method_folder("gandef", p["tag"]), len(p["seeds"]))
                      + tuple(report.fmt(p[f"{k}_{e}"]["mean"]) for k, e, _ in SERIES)
                      for p in pts])
    report.write_json(paths["json"], {
        "dataset": dataset, "points": pts, "provenance": prov, "units": "percent",
        "note": "gamma = 0: the classifier's loss is Mix PGD's; the discriminator is still "
                "trained and read by GanDef-Comb. comb = GanDef-Comb at each run's threshold. "
                "form: GanDef's loss form (docs/gandef-loss.md)."})
    report.save_figure(plot(dataset, pts), paths["png"], prov)
    return paths


def main(argv):
    gammas = parse_gammas(FLAGS.gammas)
    preset, (dataset,), seeds = report.check_selection(FLAGS.preset, [FLAGS.dataset], FLAGS.seeds)
    if not FLAGS.render_only:
        sweep(preset, dataset, gammas, seeds, verbose=FLAGS.verbose, allow_train=FLAGS.train,
              forms=FLAGS.forms)
    if not any(p["seeds"] for f in FLAGS.forms or GANDEF_LOSSES
               for p in points(preset, dataset, gammas, seeds, f)):
        raise GandefError(f"no {preset} gamma-sweep runs for {dataset}, gammas "
                          f"{FLAGS.gammas}, seeds {FLAGS.seeds}: nothing rendered, every file "
                          "left as it was; without --render_only the sweep makes them (priced first)")
    paths = render(preset, dataset, gammas, seeds, forms=FLAGS.forms)
    print("wrote " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    define_flags()
    cli.run(main)
