"""Data behind the paper's tables and figures, from saved runs only (never retrains).

    from gandef_tf import report
    runs_ = report.load_results("quick", ["mnist"], [0])      # {dataset: {method: {seed: dict}}}
    cells = report.table2_cells(runs_, ["mnist"])             # ours vs the paper, in %
    rho = report.crossover(63.97, 73.56, 82.06, 48.33)      # 0.4176: paper, CIFAR10 PGD-2
    report.flag_everything_crossover(82.06, 48.33)          # 0.6136: flagging all beats Pure PGD

A run that is missing stays absent: nothing here fills, interpolates or borrows a number.
Accuracies from results.json are fractions; everything returned here is in percent.
CSV outputs hold data only (their headers are fixed); each has a JSON beside it whose
`provenance` key names the preset, seeds, commits and dates; every Markdown and LaTeX file
carries the same as a footer line, every PNG a short one (preset, seeds, how many runs,
their dates, the commit it was rendered at).
"""

import os
import re
from pathlib import Path

import numpy as np

from gandef_tf import GandefError, runs
from gandef_tf.config import DATASETS, METHODS, PRESETS
from gandef_tf.crossover import (crossover, crossovers,  # noqa: F401
                                 flag_everything_crossover, flag_everything_crossovers,
                                 overall_accuracy, relation)
from gandef_tf.outputs import (footer, provenance, pyplot, save_figure,  # noqa: F401
                               short_footer, write_csv, write_json, write_output)

EXAMPLES = ("original", "fgsm", "bim", "pgd1", "pgd2")  # the paper's rows
# Beyond the paper, after the paper's rows and with no paper value: the adaptive attacks,
# AutoAttack's pair, and the worst case per example over every attack a run was evaluated with.
BEYOND_EXAMPLES = ("pgd_adaptive", "cw_merged", "apgd_ce", "apgd_dlr", "worst_case")
TABLE_ROWS = EXAMPLES + BEYOND_EXAMPLES
EXAMPLE_NAMES = {"original": "Original", "fgsm": "FGSM", "bim": "BIM", "pgd1": "PGD-1",
                 "pgd2": "PGD-2", "pgd_adaptive": "Adaptive PGD", "cw_merged": "C&W merged",
                 "apgd_ce": "APGD-CE", "apgd_dlr": "APGD-DLR", "worst_case": "Worst case"}
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR10"}
# Table 2's columns; "gandef_comb" is gandef's run scored with its discriminator.
COLUMNS = ("vanilla", "pure_pgd", "mix_pgd", "logit_pairing", "gandef", "gandef_comb")
COLUMN_NAMES = {"vanilla": "Vanilla", "pure_pgd": "Pure PGD", "mix_pgd": "Mix PGD",
                "logit_pairing": "Logit Pairing", "gandef": "GanDef",
                "gandef_comb": "GanDef-Comb", "gandef_v1": "GanDef V1"}

# The PAPER's Table 2 (test accuracy, %), copied from shared/REFERENCE.md section 1.
# Rows follow EXAMPLES, entries follow COLUMNS. Never mixed into our own numbers.
PAPER_TABLE2 = {
    "mnist": dict(zip(EXAMPLES, (
        (98.70, 99.15, 99.17, 98.50, 99.10, 99.10),
        (12.15, 97.60, 96.89, 97.00, 96.85, 96.85),
        (1.07, 94.75, 94.58, 95.83, 94.28, 94.28),
        (0.87, 95.60, 95.56, 96.34, 95.31, 95.21),
        (0.93, 94.14, 93.99, 95.42, 93.62, 93.38)))),
    "cifar10": dict(zip(EXAMPLES, (
        (89.69, 82.06, 83.70, 84.21, 84.05, 63.97),
        (18.43, 56.18, 52.21, 51.63, 54.14, 87.61),
        (6.76, 49.21, 44.39, 44.09, 46.64, 76.02),
        (6.48, 51.51, 47.11, 46.53, 49.21, 80.39),
        (6.44, 48.33, 43.48, 43.28, 45.62, 73.56)))),
}
PAPER_CROSSOVER = 0.417  # "GanDef-Comb ... exceeds 41.7%" (CIFAR10, PGD-2 vs Pure PGD)


def paper_value(dataset, example, column):
    """The paper's Table 2 entry, or None for a row the paper does not have."""
    row = PAPER_TABLE2[dataset].get(example)
    return None if row is None else row[COLUMNS.index(column)]


# --- selection and loading ------------------------------------------------------------

def parse_list(text):
    """'a,b c' -> ['a', 'b', 'c']: the Makefile passes spaces, people type commas."""
    return [t for t in re.split(r"[,\s]+", str(text).strip()) if t]


def check_selection(preset, datasets, seeds):
    """(preset, [datasets], [seeds]) validated; a bad value is one GandefError line."""
    if preset not in PRESETS:
        raise GandefError(f"unknown preset {preset!r}; choose from {PRESETS}")
    datasets = parse_list(datasets) if isinstance(datasets, str) else list(datasets)
    bad = [d for d in datasets if d not in DATASETS]
    if bad or not datasets:
        raise GandefError(f"unknown dataset(s) {bad or datasets}; choose from {DATASETS}")
    try:
        seeds = [int(s) for s in (parse_list(seeds) if isinstance(seeds, str) else seeds)]
    except ValueError:
        raise GandefError(f"seeds must be integers, got {seeds!r}") from None
    if not seeds or min(seeds) < 0:
        raise GandefError(f"seeds must be non-negative integers, got {seeds!r}")
    return preset, list(dict.fromkeys(datasets)), sorted(set(seeds))


def found(preset, datasets=DATASETS):
    """{dataset: sorted seeds} of the runs in results/<preset>/ (a variant's folders, such
    as gamma sweep points, aside); datasets without runs are absent."""
    out = {}
    for d in datasets:
        seeds = {int(p.parent.name[4:]) for p in (results_root() / preset / d).glob("*/seed*/results.json")
                 if p.parent.parent.name in METHODS and p.parent.name[4:].isdigit()}
        if seeds:
            out[d] = sorted(seeds)
    return out


def resolve_selection(preset, datasets="all", seeds="all"):
    """check_selection, where 'all' means what results/<preset>/ holds: the datasets with
    runs (every dataset when none has any), and the seeds found in them (0 when none)."""
    if preset in PRESETS:
        runs_found = found(preset)
        if str(datasets).strip() == "all":
            datasets = list(runs_found) or list(DATASETS)
        if str(seeds).strip() == "all":
            wanted = parse_list(datasets) if isinstance(datasets, str) else datasets
            seeds = sorted({s for d in wanted for s in runs_found.get(d, [])}) or [0]
    return check_selection(preset, datasets, seeds)


def missing_lines(preset, datasets, seeds, methods, candidates=DATASETS):
    """What a render could not show, one line each: each of `candidates` with no runs at
    all for this preset, and the (method, seed) runs absent from the datasets shown."""
    runs_found, lines = found(preset), []
    for d in candidates:
        if d not in runs_found:
            lines.append(f"no {preset} results for {DATASET_NAMES[d]} in "
                         f"{results_root() / preset / d}: "
                         f"{'shown as missing' if d in datasets else 'not rendered'}; "
                         f"`make results PRESET={preset} DATASETS={d}` makes them "
                         "(it states their cost first)")
    for d in datasets:
        if d in runs_found:
            gone = [f"{m}/seed{s}" for m in methods for s in seeds
                    if not run_path(preset, d, m, s).exists()]
            if gone:
                lines.append(f"{DATASET_NAMES[d]}: no {preset} results for {', '.join(gone)} "
                             "(shown as missing)")
    return lines


def require_runs(preset, datasets, seeds, methods, name="results.json"):
    """A render's guard: GandefError (one line, nothing written) when not one of the runs
    asked for exists, naming the seeds that do; a render of some runs shows the rest as
    missing instead."""
    if any(run_path(preset, d, m, s, name).exists() for d in datasets for m in methods
           for s in seeds):
        return
    have = found(preset, datasets)
    where = "; ".join(f"{DATASET_NAMES[d]} seeds {', '.join(map(str, ss))}"
                      for d, ss in have.items()) or "none"
    raise GandefError(f"no {preset} results for {', '.join(datasets)} seed(s) "
                      f"{', '.join(map(str, seeds))} in {results_root() / preset} (of "
                      f"{', '.join(methods)}): nothing rendered, every file left as it was; "
                      f"runs there: {where}")


def results_root():
    return Path(os.environ.get("GANDEF_RESULTS_DIR", "results"))


def figures_dir(preset=None):
    """figures/<preset>/ ($GANDEF_FIGURES_DIR); figures/ itself for preset-free outputs."""
    root = Path(os.environ.get("GANDEF_FIGURES_DIR", "figures"))
    return root / preset if preset else root


def run_path(preset, dataset, method, seed, name="results.json", tag=""):
    # The layout of runs.results_dir(cfg), without building a Config for each lookup.
    folder = runs.method_folder(method, tag)
    return results_root() / preset / dataset / folder / f"seed{seed}" / name


def load_results(preset, datasets, seeds, methods=METHODS):
    """{dataset: {method: {seed: results.json dict}}}; missing runs are simply absent."""
    out = {}
    for d in datasets:
        for m in methods:
            for s in seeds:
                path = run_path(preset, d, m, s)
                if path.exists():
                    res = runs.read_json(path)
                    if res.get("preset", preset) != preset or res.get("dataset", d) != d:
                        raise GandefError(f"{path} holds a run of another preset/dataset")
                    out.setdefault(d, {}).setdefault(m, {})[s] = res
    return out


def read_history(preset, dataset, method, seed, name="history.csv"):
    """history.csv (or curve.csv) rows as dicts, [] when missing; a csv read, because
    gandef_tf.training would import TensorFlow."""
    return runs.read_csv(run_path(preset, dataset, method, seed, name))


def column_accuracy(res, column):
    """{example: %} of one run for a Table 2 column, its worst case over attacks included;
    None when that run lacks it."""
    comb = column == "gandef_comb"
    acc = (res.get("comb") or {}).get("accuracy") if comb else res.get("accuracy")
    worst = res.get("robustness", {}).get("comb_worst_case" if comb else "worst_case")
    return None if acc is None else {k: 100.0 * v for k, v in {**acc, "worst_case": worst}.items()
                                     if v is not None}


def column_runs(loaded, dataset, column):
    """{seed: results dict} behind a column (GanDef-Comb is read from gandef's runs)."""
    return loaded.get(dataset, {}).get("gandef" if column == "gandef_comb" else column, {})


# --- aggregation ---------------------------------------------------------------------

def aggregate(values):
    """(mean, sample std with ddof=1, n) of per-seed values; std is 0.0 for one seed and
    (None, None, 0) for none."""
    values = [float(v) for v in values if v is not None]
    if not values:
        return None, None, 0
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std, len(values)


def table2_cells(loaded, datasets, columns=COLUMNS, rows=TABLE_ROWS):
    """One dict per (dataset, example, column): mean, std, n, seeds, paper, difference
    (ours - paper, both in %, from the rounded mean so the table reads consistently;
    None for the rows beyond the paper)."""
    cells = []
    for d in datasets:
        for e in rows:
            for c in columns:
                by_seed = {s: (column_accuracy(r, c) or {}).get(e)
                           for s, r in column_runs(loaded, d, c).items()}
                by_seed = {s: v for s, v in by_seed.items() if v is not None}
                mean, std, n = aggregate(by_seed.values())
                paper = paper_value(d, e, c)
                diff = None if mean is None or paper is None else round(round(mean, 2) - paper, 2)
                cells.append(dict(dataset=d, example=e, column=c, mean=mean, std=std, n=n,
                                  seeds=sorted(by_seed), paper=paper, difference=diff))
    return cells


def mean_accuracy(loaded, dataset, column):
    """{example: mean % over seeds} of one column, or None when it has no runs."""
    cells = table2_cells(loaded, [dataset], [column])
    means = {c["example"]: c["mean"] for c in cells if c["mean"] is not None}
    return means or None


# --- Fig. 4: gandef_tf.crossover, re-exported --------------------------------------

def paper_means(dataset):
    return {c: {e: paper_value(dataset, e, c) for e in EXAMPLES} for c in COLUMNS}


# --- provenance and writing: gandef_tf.outputs, re-exported -----------------------

def all_runs(loaded):
    return [r for by_m in loaded.values() for by_s in by_m.values() for r in by_s.values()]


def fmt(v, digits=2, none="missing"):
    return none if v is None else f"{v:.{digits}f}"
