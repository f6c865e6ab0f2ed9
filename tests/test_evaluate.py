"""GanDef-Comb's scoring rule (REFERENCE.md §2), score(), and an end-to-end smoke
evaluation on synthetic data: results.json, predictions.npz, history.csv, configs."""

import csv
import json
import shutil

import keras
import numpy as np
import pytest

from conftest import module_dirs
from gandef_tf import GandefError, runs
from gandef_tf import evaluate as ev
from gandef_tf import training
from gandef_tf.config import EVAL_ATTACKS, get_config
from gandef_tf.evaluate import comb_correct, score

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")

# ---------------------------------------------------------------- GanDef-Comb rule

TAU = 0.5


@pytest.mark.parametrize("pred,label,disc,adversarial,expected", [
    (3, 3, 0.2, False, True),    # original, right, passes D -> correct
    (3, 3, 0.7, False, False),   # original, right, flagged -> wrong
    (3, 3, 0.5, False, False),   # D exactly tau counts as flagged
    (4, 3, 0.2, False, False),   # original, wrong, passes D -> wrong
    (4, 3, 0.9, False, False),   # original, wrong, flagged -> wrong
    (4, 3, 0.9, True, True),     # adversarial, wrong, flagged -> correct (rejected)
    (4, 3, 0.5, True, True),     # D exactly tau counts as flagged
    (3, 3, 0.1, True, True),     # adversarial, right, passes D -> correct
    (3, 3, 0.9, True, True),     # adversarial, right, flagged -> correct
    (4, 3, 0.1, True, False),    # adversarial, wrong, passes D -> wrong
])
def test_comb_rule_single_cases(pred, label, disc, adversarial, expected):
    got = comb_correct(np.array([pred]), np.array([label]), np.array([disc], np.float32),
                       TAU, adversarial)
    assert got.tolist() == [expected]


def test_comb_rule_vectorised_and_threshold_dependent():
    pred = np.array([0, 1, 2, 9])
    labels = np.array([0, 1, 5, 5])
    disc = np.array([0.1, 0.6, 0.6, 0.3], np.float32)
    assert comb_correct(pred, labels, disc, 0.5, False).tolist() == [True, False, False, False]
    assert comb_correct(pred, labels, disc, 0.5, True).tolist() == [True, True, True, False]
    assert comb_correct(pred, labels, disc, 0.7, False).tolist() == [True, True, False, False]
    assert comb_correct(pred, labels, disc, 0.3, True).tolist() == [True, True, True, True]


def hand_predictions():
    return {
        "labels": np.array([0, 1, 2, 3], np.int32),
        "pred_original": np.array([0, 1, 2, 0], np.int32),   # 3/4 right
        "disc_original": np.array([0.1, 0.9, 0.2, 0.1], np.float32),
        "pred_fgsm": np.array([5, 1, 5, 5], np.int32),       # 1/4 right
        "disc_fgsm": np.array([0.8, 0.1, 0.5, 0.2], np.float32),
    }


def test_score_of_hand_built_predictions():
    acc, comb = score(hand_predictions(), 0.5)
    assert acc == {"original": 0.75, "fgsm": 0.25}
    # original: right & D<0.5 -> examples 0, 2; fgsm: right | D>=0.5 -> 0, 1, 2
    assert comb == {"original": 0.5, "fgsm": 0.75}
    acc2, comb2 = score(hand_predictions(), 0.95)
    assert acc2 == acc and comb2 == {"original": 0.75, "fgsm": 0.25}


def test_score_without_discriminator_or_threshold():
    p = hand_predictions()
    assert score(p, None) == ({"original": 0.75, "fgsm": 0.25}, None)
    no_disc = {k: v for k, v in p.items() if not k.startswith("disc_")}
    assert score(no_disc, 0.5)[1] is None


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_score_refuses_threshold_outside_unit_interval(threshold):
    with pytest.raises(GandefError, match="threshold"):
        score(hand_predictions(), threshold)


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_config_refuses_threshold_outside_unit_interval(threshold):
    with pytest.raises(GandefError, match="threshold"):
        get_config("smoke", "mnist", "gandef", threshold=threshold)


# ---------------------------------------------------------------- end to end

RESULT_KEYS = {"preset", "dataset", "method", "seed", "n_test", "accuracy", "comb", "commit",
               "tensorflow", "device", "train_seconds", "eval_seconds"}
NAMES = ["original"] + list(EVAL_ATTACKS)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One evaluated smoke GanDef run on synthetic data, made once per module, with
    tiny_classifier() in place of LeNet (test_wiring.py pins that runs build LeNet)."""
    base = tmp_path_factory.mktemp("smoke_gandef")
    with module_dirs(base, tiny=True):
        keras.utils.set_random_seed(0)
        cfg = get_config("smoke", "mnist", "gandef")
        res = ev.evaluate(cfg, verbose=0)
    return base, cfg, res


@pytest.fixture
def smoke_gandef(smoke_run, fake_data, isolated_dirs):
    """A private copy of the smoke run in this test's runs/ and results/ folders."""
    base, cfg, res = smoke_run
    for src, dst in zip((base / "runs", base / "results"), isolated_dirs):
        shutil.copytree(src, dst)
    return cfg, res, runs.run_dir(cfg), runs.results_dir(cfg)


def test_smoke_evaluation_writes_results(smoke_gandef, isolated_dirs):
    cfg, res, rdir, resdir = smoke_gandef
    assert str(rdir).startswith(str(isolated_dirs[0]))
    assert str(resdir).startswith(str(isolated_dirs[1]))
    stored = json.loads((resdir / "results.json").read_text())
    assert RESULT_KEYS <= set(stored)
    assert (stored["preset"], stored["dataset"], stored["method"], stored["seed"]) == \
        ("smoke", "mnist", "gandef", 0)
    assert stored["n_test"] == cfg.n_test
    assert set(stored["accuracy"]) == set(NAMES)
    assert set(stored["comb"]["accuracy"]) == set(NAMES)
    assert stored["comb"]["threshold"] == 0.5
    for v in list(stored["accuracy"].values()) + list(stored["comb"]["accuracy"].values()):
        assert 0.0 <= v <= 1.0
    assert stored["train_seconds"] >= 0 and stored["eval_seconds"] >= 0
    assert stored["tensorflow"] and stored["device"] and stored["commit"]
    assert res["accuracy"] == stored["accuracy"]

    with np.load(resdir / "predictions.npz") as z:
        pred = {k: z[k] for k in z.files}
    adaptive = ("pgd_adaptive", "cw_merged")  # and the candidates kept (test_adaptive.py)
    assert set(pred) == ({"labels"} | {f"pred_{n}" for n in NAMES} | {f"disc_{n}" for n in NAMES}
                         | {f"{k}_{a}" for k in ("cand", "candidates") for a in adaptive})
    assert all(len(v) == cfg.n_test for k, v in pred.items() if not k.startswith("candidates_"))
    assert all(((pred[f"disc_{n}"] >= 0) & (pred[f"disc_{n}"] <= 1)).all() for n in NAMES)
    # the stored accuracies are the predictions' accuracies
    acc, comb = score(pred, 0.5)
    assert acc == pytest.approx(stored["accuracy"]) and comb == pytest.approx(stored["comb"]["accuracy"])

    with open(resdir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == list(range(1, cfg.epochs + 1))
    for r in rows:
        assert 0.0 <= float(r["test_accuracy"]) <= 1.0
        assert np.isfinite(float(r["loss"])) and np.isfinite(float(r["d_loss"]))

    for folder in (rdir, resdir):
        assert json.loads((folder / "config.json").read_text())["config"] == json.loads(
            json.dumps(cfg.to_dict()))


def test_smoke_models_load_with_plain_keras(smoke_gandef):
    cfg, _, rdir, _ = smoke_gandef
    clf = keras.models.load_model(rdir / "classifier.keras")
    disc = keras.models.load_model(rdir / "discriminator.keras")
    assert clf.count_params() == 25_450 and disc.count_params() == 2_529  # tiny_classifier
    # the saved models reproduce the saved predictions on the original test set
    _, (x, y) = training.load_data(cfg)
    z = clf(x, training=False).numpy()
    with np.load(runs.results_dir(cfg) / "predictions.npz") as p:
        np.testing.assert_array_equal(np.argmax(z, 1), p["pred_original"])
        d = 1 / (1 + np.exp(-disc(z, training=False).numpy()[:, 0]))
        np.testing.assert_allclose(d, p["disc_original"], rtol=1e-4, atol=1e-5)


def _no_more_work(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("a finished run was attacked or trained again")

    monkeypatch.setattr(ev, "predict", fail)
    monkeypatch.setattr(keras.Model, "fit", fail)


def test_rescoring_with_another_threshold_reuses_predictions(smoke_gandef, monkeypatch):
    cfg, res, _, resdir = smoke_gandef
    with np.load(resdir / "predictions.npz") as z:
        pred = {k: z[k] for k in z.files}
    _no_more_work(monkeypatch)
    cfg2 = get_config("smoke", "mnist", "gandef", threshold=0.3)
    res2 = ev.evaluate(cfg2, verbose=0)
    acc, comb = score(pred, 0.3)
    assert res2["comb"]["threshold"] == 0.3
    assert res2["comb"]["accuracy"] == pytest.approx(comb)
    assert res2["accuracy"] == pytest.approx(res["accuracy"])
    assert json.loads((resdir / "results.json").read_text())["comb"]["threshold"] == 0.3
    assert [r["threshold"] for r in res2["rescored"]] == [[0.5, 0.3]]


def test_finished_evaluation_is_reused(smoke_gandef, monkeypatch):
    cfg, res, _, _ = smoke_gandef
    _no_more_work(monkeypatch)
    assert ev.evaluate(cfg, verbose=0)["accuracy"] == res["accuracy"]


def test_rescore_from_saved_predictions_by_hand(smoke_gandef):
    """What re-scoring must give: score() of predictions.npz at the new threshold, with
    the same plain accuracies (independent of the reuse bug above)."""
    cfg, res, _, resdir = smoke_gandef
    pred = ev.load_predictions(resdir / "predictions.npz")
    new = ev.results_dict(get_config("smoke", "mnist", "gandef", threshold=0.3), pred, 1.0, 2.0)
    assert new["accuracy"] == pytest.approx(res["accuracy"])
    assert new["comb"]["threshold"] == 0.3
    assert new["comb"]["accuracy"] == pytest.approx(score(pred, 0.3)[1])


def test_vanilla_results_have_no_comb(fake_data, tiny_models):
    cfg = get_config("smoke", "mnist", "vanilla", n_train=32, n_test=16, epochs=1,
                     eval_attacks=("fgsm",), eval_batch_size=16)
    res = ev.evaluate(cfg, verbose=0)
    assert "comb" not in res and set(res["accuracy"]) == {"original", "fgsm"}
    with np.load(runs.results_dir(cfg) / "predictions.npz") as z:
        assert set(z.files) == {"labels", "pred_original", "pred_fgsm"}


def test_unreadable_predictions_are_a_gandef_error(tmp_path):
    bad = tmp_path / "predictions.npz"
    bad.write_bytes(b"not an npz")
    with pytest.raises(GandefError, match="cannot read predictions"):
        ev.load_predictions(bad)


# ---------------------------------------------------------------- beyond the paper

def test_smoke_results_have_adaptive_attacks_and_robustness(smoke_gandef):
    _, res, _, _ = smoke_gandef
    for key in ("pgd_adaptive", "cw_merged"):
        assert key in res["accuracy"] and key in res["comb"]["accuracy"]
    adaptive = res["adaptive"]
    assert adaptive["beta"] is None and adaptive["restarts"] == 2  # smoke cap
    assert adaptive["betas"] == list(ev.BETA_GRID) and adaptive["examples"] == 64
    kept = res["candidates_kept"]
    assert list(kept["pgd_adaptive"]) == ["pgd2"] + [f"beta {b:g}" for b in ev.BETA_GRID]
    assert list(kept["cw_merged"]) == ["pgd2", "cw_merged"]
    assert all(sum(k.values()) == 64 for k in kept.values())
    for a in ("pgd_adaptive", "cw_merged"):  # never above PGD-2 (test_adaptive.py: why)
        assert res["accuracy"][a] <= res["accuracy"]["pgd2"]
        assert res["comb"]["accuracy"][a] <= res["comb"]["accuracy"]["pgd2"]
    assert res["standard_error"]["pgd2"] == pytest.approx(
        np.sqrt(res["accuracy"]["pgd2"] * (1 - res["accuracy"]["pgd2"]) / 64))
    assert set(res["comb"]["standard_error"]) == set(NAMES)
    assert "subset" not in res  # 64 test examples < strong_eval_n: every attack on all
    rob = res["robustness"]
    assert set(rob["attacks"]) == set(EVAL_ATTACKS)
    assert rob["worst_case"] <= min(res["accuracy"][a] for a in EVAL_ATTACKS)
    assert rob["comb_worst_case"] <= min(res["comb"]["accuracy"][a] for a in EVAL_ATTACKS)
    assert isinstance(rob["masking_flags"], list)


def test_extending_a_finished_run_keeps_its_numbers(smoke_gandef, monkeypatch):
    """A run evaluated with the paper's four attacks (its stored config says so) gains the
    adaptive attacks alone; every number and array of the finished attacks is unchanged."""
    cfg, _, rdir, resdir = smoke_gandef
    paper = ("fgsm", "bim", "pgd1", "pgd2")
    pred = ev.load_predictions(resdir / "predictions.npz")
    old_pred = {k: v for k, v in pred.items() if not k.endswith(("_pgd_adaptive", "_cw_merged"))}
    old_cfg = get_config("smoke", "mnist", "gandef", eval_attacks=paper)
    old = ev.results_dict(old_cfg, old_pred, 1.0, 2.0)
    old.pop("robustness")  # as written before this feature
    runs.save_npz(resdir / "predictions.npz", **old_pred)
    runs.write_json(resdir / "results.json", old)
    for folder in (rdir, resdir):  # the stored config lists the paper's four attacks
        stored = json.loads((folder / "config.json").read_text())
        stored["config"]["eval_attacks"] = list(paper)
        runs.write_json(folder / "config.json", stored)
    asked = []
    real_predict = ev.predict

    def spy(*args, **kwargs):
        asked.append(list(args[5]))
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(ev, "predict", spy)
    monkeypatch.setattr(keras.Model, "fit", lambda *a, **k: pytest.fail("trained again"))
    new = ev.evaluate(cfg, verbose=0)
    assert asked == [["pgd_adaptive", "cw_merged"]]  # no beta search: one call
    for key in ("original",) + paper:
        assert new["accuracy"][key] == old["accuracy"][key]
        assert new["comb"]["accuracy"][key] == old["comb"]["accuracy"][key]
    assert {"pgd_adaptive", "cw_merged"} <= set(new["accuracy"]) and "adaptive" in new
    assert new["commit"] == old["commit"] and new["date"] == old["date"]
    assert new["extensions"][0]["attacks"] == ["pgd_adaptive", "cw_merged"]
    merged = ev.load_predictions(resdir / "predictions.npz")
    for k, v in old_pred.items():
        np.testing.assert_array_equal(merged[k], v)
    assert {"pred_cw_merged", "disc_pgd_adaptive"} <= set(merged)
    # PGD-2's saved examples were a candidate of both: never less effective than PGD-2
    for a in ("pgd_adaptive", "cw_merged"):
        assert merged[f"candidates_{a}"][0] == "pgd2"
        assert np.all(merged[f"pred_{a}"][merged["pred_pgd2"] != merged["labels"]]
                      != merged["labels"][merged["pred_pgd2"] != merged["labels"]])
    # and now it is complete: reused as it is
    stored = json.loads((resdir / "results.json").read_text())
    monkeypatch.setattr(ev, "predict", lambda *a, **k: pytest.fail("attacked again"))
    assert ev.evaluate(cfg, verbose=0) == stored


def test_evaluate_cli_summary_prints_worst_case_and_flags(smoke_gandef):
    from experiments.evaluate import summary

    cfg, res, _, _ = smoke_gandef
    res = dict(res, robustness=dict(res["robustness"], masking_flags=["pgd2 (2 steps) 50.0% > x"]))
    text = "\n".join(summary(cfg, res))
    assert "cw_merged" in text and "worst case over all attacks" in text
    assert "possible gradient masking: pgd2 (2 steps) 50.0% > x" in text

