"""Issue 36's epoch probes as a table and a figure, from their saved rows alone.

    python -m experiments.probe_report          # make probe-report
    python -m experiments.probe_report \
        --rows=results/quick/cifar10/tuning/dropout_schedule.jsonl \
        --out=figures/quick/dropout_schedule

Reads the rows experiments.probe_epochs wrote (one per probe and epoch, scored on held-out
validation images, never test images) and writes <out>.md, <out>.json and <out>.png: per
probe and epoch, validation accuracy on original images and under PGD-1, and issue 36's
finding 2 (fit()'s running accuracy on the training attack's examples against PGD-1 on
held-out images) split into parts that add up to the whole gap, in points:

    epoch mean  fit()'s running accuracy (the epoch's mean, augmented batches, training
                mode) minus the end-of-epoch model's, training mode, on fixed training images
    dropout     training mode minus inference mode, same examples
    images      training images minus validation images, the training attack, inference mode
    attack      the training attack (PGD-7 on CIFAR-10) minus PGD-1 (PGD-20), validation images

A row written before the validation images were attacked with the training attack lacks
the last two parts (shown as "-"; their sum is then given as one). Trains nothing.
"""

import json
from pathlib import Path

from absl import flags

from experiments import cli
from gandef_tf import GandefError, outputs

FLAGS = flags.FLAGS
# experiments.probe_queues.DEFAULT_OUT (a test pins it), not imported: that module brings
# TensorFlow, which rendering never needs.
DEFAULT_ROWS = "results/quick/cifar10/tuning/dropout_schedule.jsonl"
PARTS = ("epoch_mean", "dropout", "images", "attack")


def read(path):
    """{probe name: [rows in epoch order]} of a probe_epochs .jsonl file."""
    path = Path(path)
    if not path.exists():
        raise GandefError(f"no probe rows at {path}: run experiments.probe_epochs first "
                          "(make probe-epochs)")
    by_name = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                by_name.setdefault(row["name"], []).append(row)
            except (ValueError, KeyError, TypeError):
                raise GandefError(f"{path}, line {i}: not a probe row") from None
    return {n: sorted(rows, key=lambda r: r["epoch"]) for n, rows in sorted(by_name.items())}


def _pct(v):
    return None if v is None else 100.0 * v


def gap_parts(row):
    """Finding 2's gap at one row, in points: {"total", "epoch_mean", "dropout", "images",
    "attack", "images_and_attack"}; a part whose measurement the row lacks is None."""
    fit = _pct((row.get("train") or {}).get("accuracy"))
    train_mode = _pct(row["train_attack"]["training_mode"])
    inference = _pct(row["train_attack"]["inference_mode"])
    val = _pct((row.get("validation_train_attack") or {}).get("inference_mode"))
    pgd1 = _pct(row["validation"]["pgd1"])
    diff = lambda a, b: None if a is None or b is None else a - b
    return {"total": diff(fit, pgd1), "epoch_mean": diff(fit, train_mode),
            "dropout": diff(train_mode, inference), "images": diff(inference, val),
            "attack": diff(val, pgd1), "images_and_attack": diff(inference, pgd1)}


def summary(rows):
    """Per epoch: what the table and the figure show, in %."""
    # Rows written before 2026-12-07 05:00 UTC timed only the epoch's last process.
    return [{"epoch": r["epoch"], "step": r["step"], "train_seconds": r.get("train_seconds"),
             "train_seconds_last_process_only": "segment_seconds" not in r
             and bool(r.get("resumed_after")),
             "original": _pct(r["validation"]["original"]), "pgd1": _pct(r["validation"]["pgd1"]),
             "fit_accuracy": _pct((r.get("train") or {}).get("accuracy")),
             "train_attack_training_mode": _pct(r["train_attack"]["training_mode"]),
             "train_attack_inference_mode": _pct(r["train_attack"]["inference_mode"]),
             "validation_train_attack":
                 _pct((r.get("validation_train_attack") or {}).get("inference_mode")),
             "gap": gap_parts(r)} for r in rows]


def _f(v, sign=False):
    return "-" if v is None else f"{v:+.1f}" if sign else f"{v:.1f}"


def markdown(summaries, prov):
    lines = ["# Issue 36's epoch probes (validation images; trains nothing)", "",
             "Accuracy in %, on held-out validation images unless the column says training "
             "images; finding 2's gap in points (experiments/probe_report.py says what each "
             "part is). The footer's runs are the probe rows, one per probe and epoch.", ""]
    for name, rows in summaries.items():
        lines += [f"## {name}", "",
                  "| epoch | step | original | PGD-1 | fit() running | training attack, "
                  "training images, training mode | same, inference mode | training attack, "
                  "validation images | gap | epoch mean | dropout | images | attack | s |",
                  "|" + "---|" * 14]
        for s in rows:
            g = s["gap"]
            images, attack = ((_f(g["images"], True), _f(g["attack"], True))
                              if g["images"] is not None else
                              (f"{_f(g['images_and_attack'], True)} (both)", "-"))
            lines.append(
                f"| {s['epoch']} | {s['step']} | {_f(s['original'])} | {_f(s['pgd1'])} | "
                f"{_f(s['fit_accuracy'])} | {_f(s['train_attack_training_mode'])} | "
                f"{_f(s['train_attack_inference_mode'])} | {_f(s['validation_train_attack'])} | "
                f"{_f(g['total'], True)} | {_f(g['epoch_mean'], True)} | "
                f"{_f(g['dropout'], True)} | {images} | {attack} | "
                f"{'-' if s['train_seconds'] is None else round(s['train_seconds'])}"
                f"{' *' if s['train_seconds_last_process_only'] else ''} |")
        lines.append("")
    if any(s["train_seconds_last_process_only"] for rows in summaries.values() for s in rows):
        lines += ["\\* the seconds of the epoch's last process only: it was resumed, and rows "
                  "of that time did not sum the processes.", ""]
    return "\n".join(lines + [outputs.footer(prov), ""])


def figure(summaries, path, prov, horizon):
    plt = outputs.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for name, rows in summaries.items():
        style = "-" if ".authors_code." in f".{name}." else "--"
        for ax, key in zip(axes, ("original", "pgd1")):
            ax.plot([s["epoch"] for s in rows], [s[key] for s in rows], style, marker="o",
                    label=name)
    for ax, title in zip(axes, ("original (validation)", "PGD-1 (validation)")):
        ax.set(title=title, xlabel="adversarial epoch", ylabel="accuracy, %")
        ax.grid(alpha=0.3)
        ax.set_xticks(range(1, horizon + 1))
        ax.set_xlim(0.5, horizon + 0.5)  # each probe's planned epochs, so the trend's room shows
    axes[1].legend(fontsize=7)
    outputs.save_figure(fig, path, prov)


def render(rows_path, out):
    by_name = read(rows_path)
    if not by_name:
        raise GandefError(f"{rows_path} holds no probe rows yet")
    every = [r for rows in by_name.values() for r in rows]
    seeds = sorted({r["config"]["seed"] for r in every})
    prov = outputs.provenance(every[0]["config"]["preset"], seeds, every)
    summaries = {n: summary(rows) for n, rows in by_name.items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    outputs.write_json(out.with_suffix(".json"), {"rows": str(rows_path), "probes": summaries,
                                                  "provenance": prov})
    outputs.write_output(out.with_suffix(".md"), markdown(summaries, prov))
    horizon = max([r["config"].get("epochs", 1) for r in every] + [r["epoch"] for r in every])
    figure(summaries, out.with_suffix(".png"), prov, horizon)
    return summaries


def main(argv):
    summaries = render(FLAGS.rows, FLAGS.out)
    for name, rows in summaries.items():
        last = rows[-1]
        print(f"{name}: epoch {last['epoch']}: original {_f(last['original'])}%, "
              f"PGD-1 {_f(last['pgd1'])}%")


if __name__ == "__main__":
    flags.DEFINE_string("rows", DEFAULT_ROWS, "The probes' rows (experiments.probe_epochs).")
    flags.DEFINE_string("out", "figures/quick/dropout_schedule",
                        "Output path without suffix: .md, .json and .png are written.")
    cli.run(main)
