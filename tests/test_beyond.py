"""Outputs beyond the paper, rendered from hand-written runs: Table 2's adaptive rows and
worst-case section, Fig. 4's best-threshold curve, the ROC figure, the gamma sweep (its
renderer, and one tiny sweep trained at the smoke preset), and tagged run folders."""

import json

import numpy as np
import pytest

from gandef_tf import GandefError, report, runs
from gandef_tf.config import deviations, get_config
from test_report import KEYS, cell, read_csv, write_run

ALL = KEYS + ("pgd_adaptive", "cw_merged")


@pytest.fixture(autouse=True)
def figures(monkeypatch, tmp_path):
    monkeypatch.setenv("GANDEF_FIGURES_DIR", str(tmp_path / "figures"))
    return tmp_path / "figures"


def with_robustness(preset, method, seed, worst, flags=(), comb_worst=None, acc=0.8):
    write_run(preset, "mnist", method, seed, dict.fromkeys(ALL, acc),
              dict.fromkeys(ALL, 0.9) if comb_worst is not None else None)
    path = report.run_path(preset, "mnist", method, seed)
    res = runs.read_json(path)
    res["robustness"] = {"worst_case": worst, "masking_flags": list(flags)}
    if comb_worst is not None:
        res["robustness"]["comb_worst_case"] = comb_worst
    runs.write_json(path, res)


def test_table2_adaptive_rows_worst_case_and_flags():
    from experiments import table2

    with_robustness("quick", "pure_pgd", 0, 0.70, ["pgd2 (80 steps) 71.0% > pgd1 (40 steps) 60.0%"])
    with_robustness("quick", "pure_pgd", 1, 0.60)
    with_robustness("quick", "gandef", 0, 0.50, comb_worst=0.65)
    paths = table2.render("quick", "mnist", "0,1")
    rows = read_csv(paths["csv"])
    assert cell(rows, "MNIST", "Adaptive PGD", "Pure PGD") == {
        "dataset": "MNIST", "examples": "Adaptive PGD", "method": "Pure PGD",
        "accuracy": "80.00", "paper": "", "difference": ""}
    assert cell(rows, "MNIST", "C&W merged", "GanDef-Comb")["accuracy"] == "90.00"
    assert cell(rows, "MNIST", "PGD-2", "Pure PGD")["paper"] == "94.14"  # paper rows as before
    md = paths["md"].read_text()
    assert "| MNIST | Adaptive PGD | missing | 80.00 ± 0.00 |" in md  # two seeds, no paper cell
    assert "| MNIST | Worst case | missing | 65.00 ± 7.07 |" in md  # a row of the table
    # these runs record no candidates kept: made before the adaptive attacks kept PGD-2's
    assert ("no PGD-2 candidate), so their adaptive rows may read above PGD-2: mnist/gandef/seed0, "
            "mnist/pure_pgd/seed0, mnist/pure_pgd/seed1.") in md
    assert "50.00 (n=1) | 65.00 (n=1) |" in md  # GanDef's worst cases: one of the two seeds
    assert "| MNIST | C&W merged | missing | 80.00 ± 0.00 | missing | missing | 80.00 (n=1) | 90.00 (n=1) |" in md
    assert "- MNIST pure_pgd/seed0: pgd2 (80 steps) 71.0% > pgd1 (40 steps) 60.0%" in md
    out = json.loads(paths["json"].read_text())
    assert out["worst_case"]["mnist"]["pure_pgd"]["mean"] == pytest.approx(65.0)
    assert out["masking_flags"] == [{"dataset": "mnist", "run": "pure_pgd/seed0",
                                     "flag": "pgd2 (80 steps) 71.0% > pgd1 (40 steps) 60.0%"}]
    assert "Adaptive PGD" in paths["tex"].read_text()


def test_table2_rows_on_a_subset_show_images_and_standard_error():
    from experiments import table2

    for seed, (acc, se) in enumerate([(0.80, 0.0126), (0.70, 0.0145)]):
        with_robustness("paper", "pure_pgd", seed, 0.6, acc=acc)
        path = report.run_path("paper", "mnist", "pure_pgd", seed)
        res = runs.read_json(path)
        res["accuracy"].update(apgd_ce=acc, apgd_dlr=acc - 0.1)
        res["standard_error"] = {"apgd_ce": se, "apgd_dlr": se, "pgd2": 0.004}
        res["subset"] = {"attacks": {"apgd_ce": 1000, "apgd_dlr": 1000}, "of": 10000}
        res["robustness"].update(worst_case_examples=1000, worst_case_se=0.0155)
        res["candidates_kept"] = {"pgd_adaptive": {"pgd2": 600, "pgd_adaptive": 400}}
        runs.write_json(path, res)
    paths = table2.render("paper", "mnist", "0,1")
    md = paths["md"].read_text()
    # mean over the seeds, their sample std, then the subset and the mean standard error
    assert "| MNIST | APGD-CE | missing | 75.00 ± 7.07 [1000 images, SE 1.35] |" in md
    assert "| MNIST | APGD-DLR | missing | 65.00 ± 7.07 [1000 images, SE 1.35] |" in md
    assert "| MNIST | Worst case | missing | 60.00 ± 0.00 [1000 images, SE 1.55] |" in md
    # PGD-2 ran on every test image: no note, the paper's cell as before
    assert "| MNIST | PGD-2 | missing (paper 0.93) | 75.00 ± 7.07 (paper 94.14, -19.14) |" in md
    assert cell(read_csv(paths["csv"]), "MNIST", "APGD-DLR", "Pure PGD")["accuracy"] == "65.00"
    assert "may read above PGD-2" not in md
    (c,) = [c for c in json.loads(paths["json"].read_text())["cells"]
            if (c["example"], c["column"]) == ("apgd_ce", "pure_pgd")]
    assert c["subset"] == [1000] and c["se"] == pytest.approx(1.355)


def test_table2_worst_case_over_unlike_evaluations_says_so():
    from experiments import table2

    # seed 0: the paper's four attacks on every test image; seed 1: APGD too, on 1,000
    with_robustness("paper", "pure_pgd", 0, 0.14)
    with_robustness("paper", "pure_pgd", 1, 0.12)
    for seed, attacks, extra in [(0, 4, {}), (1, 6, {"worst_case_examples": 1000,
                                                     "worst_case_se": 0.0101})]:
        path = report.run_path("paper", "mnist", "pure_pgd", seed)
        res = runs.read_json(path)
        res["robustness"].update(attacks=["fgsm", "bim", "pgd1", "pgd2", "apgd_ce",
                                          "apgd_dlr"][:attacks], **extra)
        runs.write_json(path, res)
    md = table2.render("paper", "mnist", "0,1")["md"].read_text()
    assert ("| MNIST | Worst case | missing | 13.00 ± 1.41 [1000/10000 images, SE 1.01] "
            "[seeds differ: 4/6 attacks] |") in md
    assert "[seeds differ: a/b attacks]" in md  # and the legend says what that means


def gandef_predictions(seed, n=400):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int32)
    wrong = lambda p: np.where(rng.uniform(size=n) < p, labels, (labels + 1) % 10).astype(np.int32)
    out = {"labels": labels, "pred_original": wrong(0.95),
           "disc_original": rng.beta(2, 6, n).astype(np.float32)}
    for a, p in (("fgsm", 0.6), ("pgd2", 0.3), ("cw_merged", 0.2)):
        out[f"pred_{a}"], out[f"disc_{a}"] = wrong(p), rng.beta(6, 2, n).astype(np.float32)
    return out


def write_gandef(seed):
    write_run("quick", "mnist", "gandef", seed, dict.fromkeys(KEYS, 0.5), dict.fromkeys(KEYS, 0.6))
    pred = gandef_predictions(seed)
    runs.save_npz(report.run_path("quick", "mnist", "gandef", seed, "predictions.npz"), **pred)
    return pred


def test_fig4_best_tau_curve_from_predictions():
    from experiments import fig4
    from gandef_tf import scoring

    preds = [write_gandef(0), write_gandef(1)]
    paths = fig4.render("quick", "mnist", "0,1")
    best = json.loads(paths["json"].read_text())["gandef_comb_best_tau"]["mnist"]
    assert set(best) == {"fgsm", "pgd2"} and best["pgd2"]["seeds"] == [0, 1]
    curve = np.array(best["pgd2"]["accuracy"])
    expected = np.mean([scoring.best_tau_curve(p, "pgd2", fig4.RHO)[0] for p in preds], axis=0)
    np.testing.assert_allclose(curve, expected)
    for seed, p in enumerate(preds):  # above each seed's line at the fixed threshold
        fixed = scoring.score(p, 0.5)[1]
        line = report.overall_accuracy(100 * fixed["original"], 100 * fixed["pgd2"], fig4.RHO)
        assert np.all(np.array(best["pgd2"]["accuracy_by_seed"][str(seed)]) >= line - 1e-9)
    rows = read_csv(paths["best_tau_csv"])
    assert len(rows) == 2 * 2 * 101 and set(rows[0]) == {"dataset", "attack", "seed", "rho", "tau",
                                                         "accuracy"}


def test_roc_figure_from_predictions():
    from experiments import roc
    from gandef_tf import scoring

    pred = write_gandef(0)
    paths = roc.render("quick", "mnist", "0")
    out = json.loads(paths["json"].read_text())
    assert set(out["mnist"]) == {"fgsm", "pgd2", "cw_merged"}
    entry = out["mnist"]["pgd2"]["seeds"]["0"]
    fpr, tpr, _ = scoring.roc(pred["disc_original"], pred["disc_pgd2"])
    assert entry["auc"] == pytest.approx(scoring.auc(fpr, tpr)) and entry["auc"] > 0.9
    assert entry["fpr"] <= 0.05 and np.mean(pred["disc_original"] >= entry["tau_at_5pct_fpr"]) <= 0.05
    assert out["mnist"]["pgd2"]["auc_mean"] == pytest.approx(entry["auc"])
    assert paths["png"].stat().st_size > 10_000 and len(read_csv(paths["csv"])) == 3


# ---------------------------------------------------------------- gamma sweep and tags

def test_tagged_runs_have_their_own_folders_and_a_deviation():
    plain = get_config("smoke", "mnist", "gandef")
    tagged = get_config("smoke", "mnist", "gandef", gamma=0.5, tag="gamma0.5")
    assert runs.run_dir(tagged).parent.name == "gandef-gamma0.5" != runs.run_dir(plain).parent.name
    assert report.run_path("smoke", "mnist", "gandef", 0, tag="gamma0.5").parent == runs.results_dir(tagged)
    assert "tag='gamma0.5' (paper: '')" in deviations(tagged)
    for bad in ("a/b", "x y", "../up"):
        with pytest.raises(GandefError, match="tag"):
            get_config("smoke", "mnist", "gandef", tag=bad)
    with pytest.raises(GandefError, match="gamma"):
        get_config("smoke", "mnist", "gandef", gamma=-1.0)


def test_gamma_sweep_renderer_on_synthetic_results():
    from experiments import gamma_sweep

    # the quick preset's own gamma is the normal gandef run; gamma 4: missing
    own = get_config("quick", "mnist", "gandef").gamma
    assert 0 < own < 4
    for g, seed, acc in ((0.0, 0, 0.70), (0.0, 1, 0.74), (own, 0, 0.80)):
        cfg = gamma_sweep.variant("quick", "mnist", g, seed)
        assert cfg.tag == ("" if g == own else "gamma0") and cfg.gamma == g
        runs.write_json(runs.results_dir(cfg) / "results.json", {
            "preset": "quick", "dataset": "mnist", "method": "gandef", "seed": seed,
            "accuracy": {"original": 0.98, "pgd1": acc},
            "comb": {"threshold": 0.5, "accuracy": {"original": 0.95, "pgd1": acc + 0.1}},
            "commit": "abc", "date": "2026-01-01T00:00:00+00:00"})
    paths = gamma_sweep.render("quick", "mnist", f"4,0,{own:g}", "0,1")
    rows = read_csv(paths["csv"])
    assert [(r["gamma"], r["run"], r["n_seeds"]) for r in rows] == [
        ("0", "gandef-gamma0", "2"), (f"{own:g}", "gandef", "1"), ("4", "gandef-gamma4", "0")]
    assert (rows[0]["accuracy_pgd1"], rows[0]["comb_pgd1"]) == ("72.00", "82.00")
    assert rows[2]["accuracy_original"] == "missing"
    pts = json.loads(paths["json"].read_text())["points"]
    assert pts[0]["accuracy_pgd1"]["std"] == pytest.approx(2.8284, abs=1e-4)
    assert paths["png"].stat().st_size > 10_000
    with pytest.raises(GandefError, match="gammas"):
        gamma_sweep.parse_gammas("1,-2")


@pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")
def test_gamma_sweep_trains_and_evaluates_at_smoke(fake_data):
    from experiments import gamma_sweep

    small = dict(n_train=64, n_test=16, epochs=1, eval_batch_size=16)
    out = gamma_sweep.sweep("smoke", "mnist", [0.0, 2.0], [0], verbose=0, **small)
    assert set(out) == {(0.0, 0), (2.0, 0)}
    assert all(set(r["accuracy"]) == {"original", "pgd1"} and "comb" in r for r in out.values())
    assert out[(0.0, 0)]["tag"] == "gamma0" and "tag" not in out[(2.0, 0)]
    assert out[(0.0, 0)]["config"]["gamma"] == 0.0
    assert runs.results_dir(get_config("smoke", "mnist", "gandef", tag="gamma0", gamma=0.0,
                                       **small)).joinpath("results.json").exists()
    paths = gamma_sweep.render("smoke", "mnist", [0.0, 2.0], [0], **small)
    assert [r["n_seeds"] for r in read_csv(paths["csv"])] == ["1", "1"]


def test_gamma_sweep_runs_each_loss_form_and_draws_both():
    from experiments import gamma_sweep

    base = get_config("quick", "mnist", "gandef")
    other = "authors_code" if base.gandef_loss == "equation" else "equation"
    cfg = gamma_sweep.variant("quick", "mnist", base.gamma, 0, other)
    assert cfg.tag == f"gamma{base.gamma:g}_{other}" and cfg.gandef_loss == other
    assert gamma_sweep.variant("quick", "mnist", base.gamma, 0).tag == ""
    with pytest.raises(GandefError, match="loss form"):
        gamma_sweep.variant("quick", "mnist", 2.0, 0, "nope")
    for form, acc in ((base.gandef_loss, 0.80), (other, 0.60)):
        c = gamma_sweep.variant("quick", "mnist", 2.0, 0, form)
        runs.write_json(runs.results_dir(c) / "results.json", {
            "preset": "quick", "dataset": "mnist", "method": "gandef", "seed": 0,
            "accuracy": {"original": 0.98, "pgd1": acc},
            "comb": {"threshold": 0.5, "accuracy": {"original": 0.9, "pgd1": acc}},
            "commit": "abc", "date": "2026-01-01T00:00:00+00:00"})
    paths = gamma_sweep.render("quick", "mnist", "2", "0")  # forms: every one with runs
    rows = read_csv(paths["csv"])
    assert sorted((r["form"], r["accuracy_pgd1"]) for r in rows) == sorted(
        [(base.gandef_loss, "80.00"), (other, "60.00")])
    only = gamma_sweep.render("quick", "mnist", "2", "0", forms=[base.gandef_loss])
    assert [r["form"] for r in read_csv(only["csv"])] == [base.gandef_loss]


def test_gamma_sweep_point_keeps_the_precision_it_was_made_in(monkeypatch):
    """A point saved in float32 is re-scored as that run on a host that would default to
    bfloat16, not refused as 'another config' (as every run keeps its stored precision)."""
    from experiments import gamma_sweep
    from gandef_tf import config

    monkeypatch.setattr(config, "default_precision", lambda: "mixed_bfloat16")
    assert gamma_sweep.variant("quick", "mnist", 0.0, 0).precision == "mixed_bfloat16"
    runs.prepare(gamma_sweep.variant("quick", "mnist", 0.0, 0, precision="float32"))
    assert gamma_sweep.variant("quick", "mnist", 0.0, 0).precision == "float32"
    # an explicit precision is the caller's: runs.prepare refuses the mismatch itself
    kept = gamma_sweep.variant("quick", "mnist", 0.0, 0, precision="mixed_bfloat16")
    assert kept.precision == "mixed_bfloat16"


def test_table2_fall_from_pgd2_to_the_worst_case_is_read_from_predictions():
    from experiments import table2
    from test_scoring import hand

    for seed in (0, 1):
        with_robustness("quick", "pure_pgd", seed, 0.5)
        p = hand()  # PGD-2 leaves 2 of 6 right, every attack 1 of 6
        if seed == 1:  # APGD on examples 0, 2, 3: there PGD-2 2 of 3, every attack none
            p.update(pred_apgd_ce=np.array([1, 2, 0], np.int32), idx_apgd_ce=np.array([0, 2, 3]))
        runs.save_npz(report.run_path("quick", "mnist", "pure_pgd", seed, "predictions.npz"), **p)
    paths = table2.render("quick", "mnist", "0,1")
    md = paths["md"].read_text()
    assert ("| MNIST | Pure PGD | 2 | 3/4 | 3/6 | 50.00 | 8.33 | -41.67 | FGSM, PGD-2, APGD-CE |"
            in md)
    fall = json.loads(paths["json"].read_text())["fall_to_worst_case"]["mnist"]
    assert list(fall) == ["pure_pgd"]  # the runs without predictions.npz have no row
    assert fall["pure_pgd"]["pgd2"] == pytest.approx(50.0)
