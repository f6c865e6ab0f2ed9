"""The costly attacks (adaptive, APGD) on a seeded subset of the test examples: the
subset, its indices in predictions.npz, and results.json's record of it, end to end on
synthetic data."""

import numpy as np
import pytest

from gandef_tf import GandefError, runs
from gandef_tf import evaluate as ev
from gandef_tf.config import get_config

# The run trains tiny_classifier() (conftest) in place of LeNet: the subset is tested.
pytestmark = [pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning"),
              pytest.mark.usefixtures("tiny_models")]


def test_costly_attacks_run_on_a_seeded_subset(fake_data):
    """strong_eval_n below the test set: the adaptive attacks run on that many examples
    (the same for every method and seed), saved with their indices; the paper's keep
    all; results.json records the subset, standard errors, and a worst case taken on
    the examples every attack ran on."""
    cfg = get_config("smoke", "mnist", "vanilla", n_train=32, n_test=24, epochs=1,
                     eval_attacks=("pgd2", "cw_merged"), eval_batch_size=8, strong_eval_n=10)
    res = ev.evaluate(cfg, verbose=0)
    pred = ev.load_predictions(runs.results_dir(cfg) / "predictions.npz")
    idx = pred["idx_cw_merged"]
    assert len(idx) == 10 and np.all(np.diff(idx) > 0) and idx.max() < 24
    np.testing.assert_array_equal(idx, ev.subset(get_config("smoke", "mnist", "gandef", seed=3,
                                                            n_test=24, strong_eval_n=10), 24))
    assert len(pred["pred_cw_merged"]) == 10 and len(pred["pred_pgd2"]) == 24
    assert "idx_pgd2" not in pred
    # PGD-2's examples, on the same 10, are a candidate: wherever it succeeds, so does C&W
    assert pred["candidates_cw_merged"].tolist() == ["pgd2", "cw_merged"]
    pgd2_wrong = pred["pred_pgd2"][idx] != pred["labels"][idx]
    assert np.all(pred["pred_cw_merged"][pgd2_wrong] != pred["labels"][idx][pgd2_wrong])
    kept = pred["cand_cw_merged"] == 0
    np.testing.assert_array_equal(pred["pred_cw_merged"][kept], pred["pred_pgd2"][idx][kept])
    assert res["subset"]["attacks"] == {"cw_merged": 10} and res["subset"]["of"] == 24
    right = pred["pred_cw_merged"] == pred["labels"][idx]
    assert res["accuracy"]["cw_merged"] == pytest.approx(right.mean())
    assert res["standard_error"]["cw_merged"] == pytest.approx(np.sqrt(right.mean() * (1 - right.mean()) / 10))
    both = right & ~pgd2_wrong
    rob = res["robustness"]
    assert rob["worst_case_examples"] == 10 and rob["worst_case"] == pytest.approx(both.mean())
    from experiments.evaluate import summary

    text = "\n".join(summary(cfg, res))
    assert "cw_merged: on a seeded subset of 10 of 24 test images, standard error" in text
    assert f"cw_merged, candidate kept per example: pgd2 {int(kept.sum())}, cw_merged" in text
    with pytest.raises(GandefError, match="strong_eval_n"):
        get_config("smoke", "mnist", "vanilla", strong_eval_n=0)
