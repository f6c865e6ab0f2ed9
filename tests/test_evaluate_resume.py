"""An evaluation stopped mid-way keeps every attack it finished and, run again, does only
the attacks it lacks (hours of CIFAR-10 attacks must survive a stop); a run that another
process is training or evaluating is refused in one line, a shared pre-training waited for."""

import fcntl
import json
import threading

import keras
import numpy as np
import pytest

from gandef_tf import GandefError, runs, training
from gandef_tf import evaluate as ev
from gandef_tf.config import get_config

# The runs here train tiny_classifier() (conftest) in place of LeNet: the pipeline is tested.
pytestmark = [pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning"),
              pytest.mark.usefixtures("tiny_models")]


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


def small(method="vanilla", **kw):
    return get_config("smoke", "mnist", method, n_train=32, n_test=16, epochs=1,
                      eval_attacks=("fgsm",), eval_batch_size=16, **kw)


def test_a_run_held_by_another_process_is_refused_and_left_alone(fake_data):
    cfg = small()
    folder = runs.run_dir(cfg)
    folder.mkdir(parents=True)
    with open(folder / ".lock", "w") as other:  # another open file: as another process
        other.write("process 4242 on elsewhere")
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(GandefError, match="being trained or evaluated by process 4242"):
            ev.evaluate(cfg, verbose=0)
        with pytest.raises(GandefError, match="process 4242"):
            training.train(cfg, verbose=0)
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]
        assert not runs.results_dir(cfg).exists()
    res = ev.evaluate(cfg, verbose=0)  # released: evaluate holds the run, train within it
    assert set(res["accuracy"]) == {"original", "fgsm"}
    with runs.hold(folder):  # free again after the evaluation
        pass


def test_a_held_shared_pretraining_is_waited_for_not_refused(capsys):
    cfg = training.pretrain_config(get_config("quick", "cifar10", "mix_pgd"))
    folder = runs.run_dir(cfg)
    folder.mkdir(parents=True)
    other = open(folder / ".lock", "w")
    fcntl.flock(other, fcntl.LOCK_EX)
    threading.Timer(0.5, other.close).start()  # the other process ends
    with runs.hold(folder, wait=cfg.tag == "pretrain"):
        pass
    assert "waiting for another process, which holds" in capsys.readouterr().out
