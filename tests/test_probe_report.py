"""The epoch probes' report (experiments/probe_report.py): rendered from hand-written rows
with known numbers; finding 2's gap split into parts that add up to it; bad input refused."""

import json
import subprocess
import sys

import pytest

from experiments import probe_report
from gandef_tf import GandefError


def row(name, epoch, fit, train_mode, inference, pgd1, val_attack=None, original=0.6):
    r = {"name": name, "epoch": epoch, "step": 351 * epoch, "train_seconds": 12000.0,
         "train": {"accuracy": fit, "loss": 1.9},
         "validation": {"original": original, "pgd1": pgd1},
         "train_attack": {"training_mode": train_mode, "inference_mode": inference},
         "config": {"preset": "quick", "seed": 0}, "commit": "abc", "date": "2026-12-07"}
    if val_attack is not None:
        r["validation_train_attack"] = {"inference_mode": val_attack, "training_mode": 0.0}
    return r


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_gap_parts_add_up_to_the_gap():
    g = probe_report.gap_parts(row("p", 1, 0.50, 0.45, 0.30, 0.19, val_attack=0.25))
    assert g["total"] == pytest.approx(31.0)
    assert (g["epoch_mean"], g["dropout"], g["images"], g["attack"]) == pytest.approx(
        (5.0, 15.0, 5.0, 6.0))
    assert sum(g[k] for k in probe_report.PARTS) == pytest.approx(g["total"])
    old = probe_report.gap_parts(row("p", 1, 0.50, 0.45, 0.30, 0.19))  # before the column
    assert old["images"] is None and old["attack"] is None
    assert old["images_and_attack"] == pytest.approx(11.0)


def test_render_table_json_and_figure(tmp_path):
    rows = write(tmp_path / "rows.jsonl", [
        row("pure_pgd.table4.sgd_cyclic", 2, 0.40, 0.38, 0.31, 0.22, val_attack=0.27),
        row("pure_pgd.table4.sgd_cyclic", 1, 0.30, 0.29, 0.20, 0.12),
        row("pure_pgd.authors_code.sgd_cyclic", 1, 0.35, 0.35, 0.35, 0.15, original=0.7)])
    out = tmp_path / "fig" / "dropout_schedule"
    summaries = probe_report.render(rows, out)
    assert list(summaries) == ["pure_pgd.authors_code.sgd_cyclic", "pure_pgd.table4.sgd_cyclic"]
    assert [s["epoch"] for s in summaries["pure_pgd.table4.sgd_cyclic"]] == [1, 2]
    md = (out.with_suffix(".md")).read_text()
    assert "| 2 | 702 | 60.0 | 22.0 | 40.0 | 38.0 | 31.0 | 27.0 | +18.0 | +2.0 | +7.0 | " \
           "+4.0 | +5.0 | 12000 |" in md
    assert "+8.0 (both) | - |" in md  # epoch 1's row lacks the validation attack
    assert "preset quick; seeds 0; runs: 3, commit(s) abc" in md
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["probes"]["pure_pgd.authors_code.sgd_cyclic"][0]["gap"]["dropout"] == 0.0
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_missing_or_bad_rows_are_refused(tmp_path):
    with pytest.raises(GandefError, match="no probe rows at"):
        probe_report.render(tmp_path / "none.jsonl", tmp_path / "out")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"name": "p", "epoch": 1}\nnot json\n')
    with pytest.raises(GandefError, match="line 2: not a probe row"):
        probe_report.read(bad)


def test_command_refuses_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "experiments.probe_report",
                        f"--rows={tmp_path / 'none.jsonl'}", f"--out={tmp_path / 'o'}"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert p.stderr.startswith("error: no probe rows at")
    assert not list(tmp_path.iterdir())
