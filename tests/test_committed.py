"""Committed models (gandef_tf.committed, experiments.commit_models): a run whose model is
not on this machine is extended with a new attack from the model committed beside its
results, without retraining; a changed model file is refused; every committed model in
results/ predicts what its predictions.npz holds."""

import dataclasses
import json
import shutil

import keras
import numpy as np
import pytest

from conftest import REPO
from experiments import commit_models
from gandef_tf import GandefError, committed, plan, runs, training
from gandef_tf import evaluate as ev
from gandef_tf.config import Config, get_config


def smoke(**kw):
    return get_config("smoke", "mnist", "gandef", n_train=64, n_test=32, epochs=1,
                      eval_batch_size=32, **kw)


def test_a_committed_model_extends_its_run_on_a_fresh_machine(fake_data, tiny_models,
                                                             monkeypatch):
    cfg = smoke(eval_attacks=("fgsm",))
    ev.evaluate(cfg, verbose=0)
    rec = commit_models.commit(cfg)
    resdir = runs.results_dir(cfg)
    assert set(rec) == {"classifier", "discriminator"}
    stored = json.loads((resdir / "results.json").read_text())["committed_models"]
    for name, r in stored.items():
        assert r["sha256"] == committed.sha256(resdir / f"{name}.keras") == rec[name]["sha256"]
        assert r["bytes"] == (resdir / f"{name}.keras").stat().st_size and r["commit"]
    before = ev.load_predictions(resdir / "predictions.npz")
    shutil.rmtree(runs.run_dir(cfg))  # a fresh clone: results, no runs/
    more = smoke(eval_attacks=("fgsm", "pgd1"))
    assert plan.status(more).work == "evaluate"  # not "retrain"
    monkeypatch.setattr(keras.Model, "fit", lambda *a, **k: pytest.fail("trained again"))
    res = ev.evaluate(more, verbose=0)
    after = ev.load_predictions(resdir / "predictions.npz")
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v)
    assert "pred_pgd1" in after and "pgd1" in res["accuracy"]
    ext = res["extensions"][-1]
    assert ext["attacks"] == ["pgd1"]
    assert ext["model"]["committed"] == {n: r["sha256"] for n, r in rec.items()}
    assert not (runs.run_dir(cfg) / "train.json").exists()


def test_a_changed_committed_model_is_refused(fake_data, tiny_models):
    cfg = get_config("smoke", "mnist", "vanilla", n_train=64, n_test=32, epochs=1,
                     eval_batch_size=32, eval_attacks=("fgsm",))
    ev.evaluate(cfg, verbose=0)
    commit_models.commit(cfg)
    shutil.rmtree(runs.run_dir(cfg))
    model = runs.results_dir(cfg) / "classifier.keras"
    model.write_bytes(model.read_bytes() + b"\0")
    with pytest.raises(GandefError, match="not the committed model"):
        ev.evaluate(dataclasses.replace(cfg, eval_attacks=("fgsm", "pgd1")), verbose=0)
    assert "pred_pgd1" not in ev.load_predictions(runs.results_dir(cfg) / "predictions.npz")


def test_commit_needs_a_finished_evaluated_run(fake_data, tiny_models):
    cfg = smoke(eval_attacks=("fgsm",))
    with pytest.raises(GandefError, match="no results.json"):
        commit_models.commit(cfg)


def committed_runs():
    """Every run under the repository's results/ with committed models."""
    found = []
    for res in sorted((REPO / "results").rglob("results.json")):
        rec = json.loads(res.read_text()).get("committed_models")
        if rec:
            found.append(pytest.param(res.parent, rec, id=str(res.parent.relative_to(REPO))))
    return found


@pytest.mark.parametrize("folder,rec", committed_runs())
def test_every_committed_model_predicts_its_committed_predictions(folder, rec):
    """Loaded as the README shows (plain Keras), on 200 of the run's test images."""
    import gandef_tf.models  # noqa: F401  (registers allCNN's InactiveDropout)

    for name, r in rec.items():
        assert committed.sha256(folder / r["file"]) == r["sha256"], name
    clf = keras.models.load_model(folder / rec["classifier"]["file"])
    cfg = Config.from_dict(json.loads((folder / "results.json").read_text())["config"])
    _, (x, y) = training.load_data(cfg)
    with np.load(folder / "predictions.npz") as z:
        labels, pred = z["labels"], z["pred_original"]
    np.testing.assert_array_equal(labels, y)
    pick = np.random.default_rng(0).choice(len(y), 200, replace=False)
    got = np.argmax(clf.predict(x[pick], batch_size=100, verbose=0), axis=1)
    np.testing.assert_array_equal(got, pred[pick])
