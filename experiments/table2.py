"""Table 2 of the paper from saved runs, each number beside the paper's and the difference.

    python -m experiments.table2                  # the committed quick runs, every seed
    python -m experiments.table2 --preset=paper --datasets=mnist,cifar10 --seeds=0,1

Writes figures/<preset>/table2.{md,csv,tex,json} ($GANDEF_FIGURES_DIR). It never trains
(`make table2 TRAIN=1` runs `make results` first). By default it reads the quick preset,
the datasets that have runs and every seed found, and says which datasets and runs are
missing. A run that is missing is shown as "missing";
several seeds are shown as mean ± sample std. table2.csv has exactly the columns
dataset,examples,method,accuracy,paper,difference (%, difference = ours - paper, the
accuracy being the mean over seeds); the std, seeds and provenance are in table2.json.
Beyond the paper, the rows "Adaptive PGD", "C&W merged", "APGD-CE", "APGD-DLR" and
"Worst case" (per example, over every attack a run was evaluated with) follow the paper's
(their paper and difference cells are empty; a row run on a seeded subset of the test
images says how many, with its standard error; a worst case whose seeds met different
attacks says so), and table2.md / table2.json list the
gradient-masking flags of every run and, per defense, the fall from PGD-2 to the worst
case on the same images (read from predictions.npz).
"""

from collections import defaultdict

import numpy as np

from absl import flags

from experiments import cli
from gandef_tf import report, runs, scoring
from gandef_tf.report import COLUMN_NAMES, COLUMNS, DATASET_NAMES, EXAMPLE_NAMES, fmt

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("preset", "quick", "Preset whose runs to read: quick (the committed "
                        "CPU-scale runs), paper or smoke.")
    flags.DEFINE_string("datasets", "all", "Datasets, comma separated; all: those with runs.")
    flags.DEFINE_string("seeds", "all", "Seeds, comma separated; several give mean ± std; "
                        "all: every seed found.")


def selection():
    # Strings, not enums: a bad value must be one 'error:' line, not absl's usage dump.
    return report.resolve_selection(FLAGS.preset, FLAGS.datasets, FLAGS.seeds)


def cell_text(c, n_full=1, tex=False):
    pm = r"$\pm$" if tex else "±"
    if c["paper"] is None:  # a row beyond the paper
        if c["mean"] is None:
            return "missing"
        note = (f" [{'/'.join(map(str, c['subset']))} images, SE {c['se']:.2f}]"
                if c.get("subset") else "")
        if c.get("attacks"):  # seeds evaluated with different attack sets
            note += f" [seeds differ: {'/'.join(map(str, c['attacks']))} attacks]"
        return mean_std(c["mean"], c["std"], c["n"], n_full, pm) + note
    if c["mean"] is None:
        return f"missing (paper {c['paper']:.2f})"
    return (f"{mean_std(c['mean'], c['std'], c['n'], n_full, pm)} "
            f"(paper {c['paper']:.2f}, {c['difference']:+.2f})")


def mean_std(mean, std, n, n_full=1, pm="±"):
    """'85.00 ± 7.07'; a cell with fewer seeds than the table asked for says how many,
    so a partly finished set of seeds never reads as a complete one."""
    return (f"{mean:.2f}" + (f" {pm} {std:.2f}" if n > 1 else "")
            + (f" (n={n})" if n < n_full else ""))


def subset_info(loaded, c):
    """{'subset': [test images per run], 'se': mean standard error in %} of a cell whose
    runs evaluated its row on a subset of their test images, {} otherwise; a worst case
    whose seeds saw different images or attacks also lists every seed's images and
    {'attacks': [attacks per run]}, so that a mean over unlike evaluations says so."""
    comb, found, images, attacks = c["column"] == "gandef_comb", [], set(), set()
    for s in c["seeds"]:
        r = report.column_runs(loaded, c["dataset"], c["column"])[s]
        if c["example"] == "worst_case":
            rob = r.get("robustness", {})
            n, se = rob.get("worst_case_examples"), rob.get(f"{'comb_' * comb}worst_case_se")
            images.add(n or r.get("n_test"))
            attacks.add(len(rob.get("attacks", [])))
        else:
            n = r.get("subset", {}).get("attacks", {}).get(c["example"])
            se = ((r.get("comb") or {}) if comb else r).get("standard_error", {}).get(c["example"])
        if n is not None and se is not None and n < r.get("n_test", n):
            found.append((n, 100 * se))
    if not found:
        return {}
    out = {"subset": sorted({n for n, _ in found} | images - {None}),
           "se": float(np.mean([e for _, e in found]))}
    return {**out, "attacks": sorted(attacks)} if len(attacks) > 1 else out


def robustness_rows(loaded, datasets):
    """{dataset: {column: (mean, std, n) of the worst case in %}} and the masking flags
    as (dataset, run, flag), from results.json's `robustness`."""
    worst, flags = {}, []
    for d in datasets:
        for c in COLUMNS:
            key = "comb_worst_case" if c == "gandef_comb" else "worst_case"
            vals = [100 * r["robustness"][key] for r in report.column_runs(loaded, d, c).values()
                    if r.get("robustness", {}).get(key) is not None]
            worst.setdefault(d, {})[c] = report.aggregate(vals)
        for m, by_s in sorted(loaded.get(d, {}).items()):
            for s, r in sorted(by_s.items()):
                flags += [(d, f"{m}/seed{s}", f) for f in r.get("robustness", {}).get("masking_flags", [])]
    return worst, flags


def robustness_markdown(loaded, datasets):
    _, flags = robustness_rows(loaded, datasets)
    out = ["", "## Beyond the paper: gradient-masking check", "",
           "A flag means a stronger attack (more steps, restarts, a margin loss, APGD) left a "
           "model MORE accurate than a weaker one, on the images both ran on, beyond "
           "sampling noise: a sign of gradient masking."]
    checked = [r for r in report.all_runs(loaded) if "robustness" in r]
    out += [""] + ([f"- {DATASET_NAMES[d]} {run}: {f}" for d, run, f in flags]
                   or [f"No run was flagged ({len(checked)} of {len(report.all_runs(loaded))} "
                       "runs carry the check; older results.json files do not)."])
    return out


def fall_rows(preset, loaded, datasets):
    """{dataset: {column: row}}: PGD-2 and the worst case over every attack on the same
    images, from each run's predictions.npz, in %, mean over the seeds found."""
    out = {}
    for d in datasets:
        for c in COLUMNS:
            per = []
            for s, r in sorted(report.column_runs(loaded, d, c).items()):
                path = report.run_path(preset, d, r["method"], s, "predictions.npz")
                if path.exists() and (c != "gandef_comb" or "comb" in r):
                    tau = r["comb"]["threshold"] if c == "gandef_comb" else None
                    per.append(scoring.fall_to_worst_case(scoring.load_predictions(path), tau))
            per = [f for f in per if f]
            if per:
                mean = {k: report.aggregate([100 * f[k] for f in per])[0]
                        for k in ("pgd2", "worst_case")}
                out.setdefault(d, {})[c] = {
                    **mean, "fall": mean["worst_case"] - mean["pgd2"], "seeds": len(per),
                    **{k: sorted({f[k] for f in per}) for k in ("attacks", "examples")},
                    "strongest": sorted({n for f in per for n in f["strongest"]},
                                        key=report.TABLE_ROWS.index)}
    return out


def fall_markdown(falls):
    out = ["", "## Beyond the paper: from PGD-2 to the worst case", "",
           "PGD-2 (the paper's strongest attack) and the worst case over every attack a run "
           "was evaluated with, both on the same images (the seeded subset once the costly "
           "attacks ran on one), the fall between them, and the strongest single attack "
           "there (ties and every seed's included); %, mean over the seeds found.", "",
           "| dataset | defense | seeds | attacks | images | PGD-2 | worst case | fall | "
           "strongest single attack |", "|---|---|---|---|---|---|---|---|---|"]
    join = lambda v: "/".join(str(x) for x in v)
    for d, by_c in falls.items():
        out += [f"| {DATASET_NAMES[d]} | {COLUMN_NAMES[c]} | {f['seeds']} | {join(f['attacks'])} "
                f"| {join(f['examples'])} | {fmt(f['pgd2'])} | {fmt(f['worst_case'])} | "
                f"{fmt(f['fall'])} | {', '.join(EXAMPLE_NAMES[n] for n in f['strongest'])} |"
                for c, f in by_c.items()]
    return out if falls else []


def grid(cells):
    """{(dataset, example): {column: cell}} in table order."""
    rows = defaultdict(dict)
    for c in cells:
        rows[(c["dataset"], c["example"])][c["column"]] = c
    return rows


def deviation_lines(loaded):
    """Each distinct deviation once, with the runs it applies to."""
    where = defaultdict(set)
    for d, by_m in loaded.items():
        for m, by_s in by_m.items():
            for res in by_s.values():
                for line in res.get("deviations", []):
                    where[line].add(f"{d}/{m}")
    return [f"- `{line}` — {', '.join(sorted(w))}" for line, w in sorted(where.items())]


def markdown(preset, datasets, seeds, loaded, cells, prov, falls):
    out = [f"# Table 2: test accuracy (%) on original and adversarial examples — preset `{preset}`",
           ""]
    if preset != "paper":
        out += [f"**This is a reduced-scale run (preset `{preset}`), not the paper's setup.** "
                "Its numbers are not directly comparable with the paper's; the deviations "
                "from the paper's settings recorded in results.json are listed below.", ""]
    out += ["Each cell: ours (mean ± sample std over seeds where several; \"(n=k)\": only k "
            "of the seeds asked for were found) (paper's Table 2 "
            "value, ours − paper). \"missing\": no saved run; nothing is filled in. "
            "GanDef-Comb = GanDef's classifier with its discriminator (threshold in "
            "results.json, REFERENCE.md §2 scoring).", ""]
    for d in datasets:
        n_tests = sorted({r["n_test"] for r in report.all_runs({d: loaded.get(d, {})})})
        seen = sorted({s for c in cells if c["dataset"] == d for s in c["seeds"]})
        taus = sorted({r["comb"]["threshold"] for r in loaded.get(d, {}).get("gandef", {}).values()
                       if "comb" in r})
        out.append(f"- {DATASET_NAMES[d]}: " + (f"test examples per run {n_tests}, seeds "
                   f"found {seen} of {list(seeds)}, GanDef-Comb threshold {taus or 'n/a'}"
                   if n_tests else "no runs found (all missing)"))
    out += ["", "| dataset | examples | " + " | ".join(COLUMN_NAMES[c] for c in COLUMNS) + " |",
            "|---|---|" + "---|" * len(COLUMNS)]
    for (d, e), row in grid(cells).items():
        out.append(f"| {DATASET_NAMES[d]} | {EXAMPLE_NAMES[e]} | "
                   + " | ".join(cell_text(row[c], len(seeds)) for c in COLUMNS) + " |")
    out += ["", "The rows after PGD-2 are beyond the paper (no paper value; "
            "docs/beyond-the-paper.md). Adaptive PGD and C&W merged attack GanDef's classifier "
            "and discriminator "
            "together, each the best per example of several candidates, PGD-2's own examples "
            "among them, so never above PGD-2; models without a discriminator meet the same "
            "attacks on their classifier. APGD-CE and APGD-DLR are AutoAttack's white-box pair "
            "(IBM ART, 100 steps) against the classifier alone (GanDef-Comb: its "
            "discriminator's verdict on their examples). Worst case: the fraction of test "
            "images right under every attack the run was evaluated with (GanDef-Comb: under "
            "each attack's Comb rule), the number to quote for a defense. \"[n images, SE "
            "s]\": the row ran on a seeded subset of n test images, the same for every run, "
            "and s is its standard error in points (mean over seeds of the runs on the "
            "subset); a worst case with such rows is taken on those images only. \"[seeds "
            "differ: a/b attacks]\": the seeds of that worst case were evaluated with "
            "different numbers of attacks (and images), so their mean mixes weaker and "
            "stronger evaluations; each seed's worst case is in its results.json."]
    older = [f"{d}/{m}/seed{s}" for d, by_m in loaded.items() for m, by_s in sorted(by_m.items())
             for s, r in sorted(by_s.items())
             if "pgd_adaptive" in r.get("accuracy", {}) and "candidates_kept" not in r]
    if older:
        out += ["", "Evaluated before that construction (one beta chosen on 100 images, no PGD-2 "
                "candidate), so their adaptive rows may read above PGD-2: " + ", ".join(older)
                + "."]
    out += robustness_markdown(loaded, datasets) + fall_markdown(falls)
    dev = deviation_lines(loaded)
    if dev:
        out += ["", "## Deviations from the paper's settings (from results.json)", ""] + dev
    elif preset == "paper" and loaded:
        out += ["", "No deviations from the paper's settings were recorded in results.json."]
    out += ["", f"_{report.footer(prov)}_", ""]
    return "\n".join(out)


def latex(preset, seeds, cells, prov):
    head = " & ".join(["Dataset", "Examples"] + [COLUMN_NAMES[c] for c in COLUMNS])
    lines = [f"% {report.footer(prov)}",
             r"\begin{table}", r"\centering", r"\scriptsize",
             r"\caption{Test accuracy (\%) on original and adversarial examples, preset "
             rf"\texttt{{{preset}}}. Each cell: ours (paper's Table 2, ours $-$ paper).}}",
             r"\begin{tabular}{ll" + "c" * len(COLUMNS) + "}", r"\hline", head + r" \\", r"\hline"]
    last = None
    for (d, e), row in grid(cells).items():
        if last is not None and d != last:
            lines.append(r"\hline")
        name = DATASET_NAMES[d] if d != last else ""
        last = d
        cells_tex = [cell_text(row[c], len(seeds), tex=True) for c in COLUMNS]
        lines.append(" & ".join([name, EXAMPLE_NAMES[e]] + cells_tex) + r" \\")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def render(preset, datasets, seeds):
    """Write table2.{md,csv,tex,json}; returns {name: path}."""
    preset, datasets, seeds = report.check_selection(preset, datasets, seeds)
    loaded = report.load_results(preset, datasets, seeds)
    cells = [dict(c, **subset_info(loaded, c)) for c in report.table2_cells(loaded, datasets)]
    prov = report.provenance(preset, seeds, report.all_runs(loaded))
    out_dir = report.figures_dir(preset)
    paths = {k: out_dir / f"table2.{k}" for k in ("md", "csv", "tex", "json")}
    rows = [(DATASET_NAMES[c["dataset"]], EXAMPLE_NAMES[c["example"]], COLUMN_NAMES[c["column"]],
             fmt(c["mean"]), fmt(c["paper"], none=""),
             fmt(c["difference"], none="" if c["paper"] is None else "missing")) for c in cells]
    report.write_csv(paths["csv"], ("dataset", "examples", "method", "accuracy", "paper",
                                    "difference"), rows)
    falls = fall_rows(preset, loaded, datasets)
    report.write_output(paths["md"], markdown(preset, datasets, seeds, loaded, cells, prov,
                                              falls))
    report.write_output(paths["tex"], latex(preset, seeds, cells, prov))
    worst, flags = robustness_rows(loaded, datasets)
    report.write_json(paths["json"], {
        "provenance": prov, "units": "percent; std is the sample std (ddof=1) over seeds",
        "worst_case": {d: {c: dict(zip(("mean", "std", "n"), v)) for c, v in w.items()}
                       for d, w in worst.items()},
        "masking_flags": [{"dataset": d, "run": r, "flag": f} for d, r, f in flags],
        "fall_to_worst_case": falls,
        "paper_source": "paper's Table 2 (shared/REFERENCE.md section 1)",
        "cells": [{**c, "examples": EXAMPLE_NAMES[c["example"]],
                   "method": COLUMN_NAMES[c["column"]]} for c in cells]})
    return paths


def run(render_fn, methods=report.COLUMNS[:-1]):
    """Entry point shared by the renderers that take --preset, --datasets and --seeds;
    `methods`: the runs the renderer reads, for the line naming those that are missing."""

    def main(argv):
        preset, datasets, seeds = selection()
        report.require_runs(preset, datasets, seeds, methods)  # else nothing is overwritten
        paths = render_fn(preset, datasets, seeds)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        for line in report.missing_lines(preset, datasets, seeds, methods):
            print(f"[{preset}] {line}")

    define_flags()
    cli.run(main)


if __name__ == "__main__":
    run(render)
