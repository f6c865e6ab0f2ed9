"""Table 2 of the paper from saved runs, each number beside the paper's and the difference.

    python -m experiments.table2 --preset=quick --datasets=mnist,cifar10 --seeds=0,1

Writes figures/<preset>/table2.{md,csv,tex,json} ($GANDEF_FIGURES_DIR). It never trains:
`make table2` runs `make results` first. A run that is missing is shown as "missing";
several seeds are shown as mean ± sample std. table2.csv has exactly the columns
dataset,examples,method,accuracy,paper,difference (%, difference = ours - paper, the
accuracy being the mean over seeds); the std, seeds and provenance are in table2.json.
"""

from collections import defaultdict

from absl import app, flags

from experiments import cli
from gandef_tf import report, runs
from gandef_tf.report import COLUMN_NAMES, COLUMNS, DATASET_NAMES, EXAMPLE_NAMES, fmt

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("preset", "paper", "Preset whose runs to read: paper, quick or smoke.")
    flags.DEFINE_string("datasets", "mnist,cifar10", "Datasets, comma separated.")
    flags.DEFINE_string("seeds", "0", "Seeds, comma separated; several give mean ± std.")


def selection():
    # Strings, not enums: a bad value must be one 'error:' line, not absl's usage dump.
    return report.check_selection(FLAGS.preset, FLAGS.datasets, FLAGS.seeds)


def cell_text(c, tex=False):
    pm = r"$\pm$" if tex else "±"
    if c["mean"] is None:
        return f"missing (paper {c['paper']:.2f})"
    std = f" {pm} {c['std']:.2f}" if c["n"] > 1 else ""
    return f"{c['mean']:.2f}{std} (paper {c['paper']:.2f}, {c['difference']:+.2f})"


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


def markdown(preset, datasets, seeds, loaded, cells, prov):
    out = [f"# Table 2: test accuracy (%) on original and adversarial examples — preset `{preset}`",
           ""]
    if preset != "paper":
        out += [f"**This is a reduced-scale run (preset `{preset}`), not the paper's setup.** "
                "Its numbers are not directly comparable with the paper's; the deviations "
                "from the paper's settings recorded in results.json are listed below.", ""]
    out += ["Each cell: ours (mean ± sample std over seeds where several) (paper's Table 2 "
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
                   + " | ".join(cell_text(row[c]) for c in COLUMNS) + " |")
    dev = deviation_lines(loaded)
    if dev:
        out += ["", "## Deviations from the paper's settings (from results.json)", ""] + dev
    elif preset == "paper" and loaded:
        out += ["", "No deviations from the paper's settings were recorded in results.json."]
    out += ["", f"_{report.footer(prov)}_", ""]
    return "\n".join(out)


def latex(preset, cells, prov):
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
        lines.append(" & ".join([name, EXAMPLE_NAMES[e]]
                                + [cell_text(row[c], tex=True) for c in COLUMNS]) + r" \\")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def render(preset, datasets, seeds):
    """Write table2.{md,csv,tex,json}; returns {name: path}."""
    preset, datasets, seeds = report.check_selection(preset, datasets, seeds)
    loaded = report.load_results(preset, datasets, seeds)
    cells = report.table2_cells(loaded, datasets)
    prov = report.provenance(preset, seeds, report.all_runs(loaded))
    out_dir = report.figures_dir(preset)
    paths = {k: out_dir / f"table2.{k}" for k in ("md", "csv", "tex", "json")}
    rows = [(DATASET_NAMES[c["dataset"]], EXAMPLE_NAMES[c["example"]], COLUMN_NAMES[c["column"]],
             fmt(c["mean"]), fmt(c["paper"]), fmt(c["difference"])) for c in cells]
    report.write_csv(paths["csv"], ("dataset", "examples", "method", "accuracy", "paper",
                                    "difference"), rows)
    runs.atomic_write(paths["md"], markdown(preset, datasets, seeds, loaded, cells, prov))
    runs.atomic_write(paths["tex"], latex(preset, cells, prov))
    report.write_json(paths["json"], {
        "provenance": prov, "units": "percent; std is the sample std (ddof=1) over seeds",
        "paper_source": "paper's Table 2 (shared/REFERENCE.md section 1)",
        "cells": [{**c, "examples": EXAMPLE_NAMES[c["example"]],
                   "method": COLUMN_NAMES[c["column"]]} for c in cells]})
    return paths


def main(argv):
    paths = render(*selection())
    print("wrote " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    define_flags()
    app.run(cli.guarded(main))
