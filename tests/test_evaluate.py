"""GanDef-Comb's scoring rule (REFERENCE.md §2), score(), and an end-to-end smoke
evaluation on synthetic data: results.json, predictions.npz, history.csv, configs."""

import csv
import json
import shutil

import keras
import numpy as np
import pytest

from conftest import patch_load_data
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
    """One evaluated smoke GanDef run on synthetic data, made once per module."""
    base = tmp_path_factory.mktemp("smoke_gandef")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANDEF_RUNS_DIR", str(base / "runs"))
        mp.setenv("GANDEF_RESULTS_DIR", str(base / "results"))
        patch_load_data(mp)
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
    assert set(pred) == {"labels"} | {f"pred_{n}" for n in NAMES} | {f"disc_{n}" for n in NAMES}
    assert all(len(v) == cfg.n_test for v in pred.values())
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
    assert clf.count_params() == 3_274_634 and disc.count_params() == 2_529
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


def test_vanilla_results_have_no_comb(fake_data, monkeypatch):
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
