"""An evaluation stopped mid-way keeps every attack it finished and, run again, does only
the attacks it lacks (hours of CIFAR-10 attacks must survive a stop)."""

import json

import keras
import numpy as np
import pytest

from gandef_tf import evaluate as ev
from gandef_tf import runs
from gandef_tf.config import get_config

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")


class Stop(Exception):
    pass


def test_an_interrupted_evaluation_resumes_after_its_last_attack(fake_data, monkeypatch):
    attacks = ("fgsm", "bim", "pgd1")
    cfg = get_config("smoke", "mnist", "vanilla", n_train=32, n_test=16, epochs=1,
                     eval_attacks=attacks, eval_batch_size=16)
    real_outcomes, calls = ev._outcomes, []

    def stop_at_bim(*args, **kwargs):  # original, fgsm, then the stop
        if len(calls) == 2:
            raise Stop
        calls.append(1)
        return real_outcomes(*args, **kwargs)

    monkeypatch.setattr(ev, "_outcomes", stop_at_bim)
    with pytest.raises(Stop):
        ev.evaluate(cfg, verbose=0)
    resdir = runs.results_dir(cfg)
    part = ev.load_predictions(resdir / "predictions.npz")
    assert set(part) == {"labels", "pred_original", "pred_fgsm"}
    stored = json.loads((resdir / "results.json").read_text())
    assert set(stored["accuracy"]) == {"original", "fgsm"} and "extensions" not in stored

    monkeypatch.setattr(ev, "_outcomes", real_outcomes)
    monkeypatch.setattr(keras.Model, "fit", lambda *a, **k: pytest.fail("trained again"))
    asked, real_predict = [], ev.predict
    monkeypatch.setattr(ev, "predict", lambda *a, **k: asked.append(list(a[5]))
                        or real_predict(*a, **k))
    res = ev.evaluate(cfg, verbose=0)
    assert asked == [["bim", "pgd1"]]
    assert set(res["accuracy"]) == {"original", *attacks}
    assert res["accuracy"]["fgsm"] == stored["accuracy"]["fgsm"]
    assert res["date"] == stored["date"]  # the provenance of the first predictions
    assert [e["attacks"] for e in res["extensions"]] == [["bim", "pgd1"]]
    # every attack's own time, from the call that ran it
    assert set(stored["attack_seconds"]) == {"original", "fgsm"}
    assert res["attack_seconds"]["fgsm"] == stored["attack_seconds"]["fgsm"]
    assert set(res["attack_seconds"]) == {"original", *attacks}
    assert sum(res["attack_seconds"].values()) <= res["eval_seconds"] + 0.5
    done = ev.load_predictions(resdir / "predictions.npz")
    np.testing.assert_array_equal(done["pred_fgsm"], part["pred_fgsm"])
    written = json.loads((resdir / "results.json").read_text())
    assert written["accuracy"] == res["accuracy"] and written["extensions"] == res["extensions"]
