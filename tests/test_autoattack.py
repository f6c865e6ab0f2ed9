"""AutoAttack's APGD-CE and APGD-DLR (IBM ART, optional): registry and config, the one-line
refusal without ART, and, where ART is installed, the attacks on a small trained model
through the whole evaluation (subset, scoring, masking check)."""

import dataclasses

import numpy as np
import pytest

from gandef_tf import GandefError, autoattack, runs
from gandef_tf import evaluate as ev
from gandef_tf.attacks import REGISTRY, generate, get_spec, make_attack
from gandef_tf.config import EVAL_ATTACKS, get_config

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")
needs_art = pytest.mark.skipif(autoattack.missing_reason() is not None,
                               reason=f"IBM ART unavailable ({autoattack.missing_reason()}): "
                                      f"{autoattack.INSTALL}")
APGD = ("apgd_ce", "apgd_dlr")


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_apgd_specs_use_the_papers_eps_and_100_steps(dataset):
    for name in APGD:
        s = REGISTRY[dataset][name]
        assert (s.kind, s.eps, s.nb_iter, s.eps_iter) == (name, REGISTRY[dataset]["pgd2"].eps, 100, None)
    assert get_spec("mnist", "apgd_dlr").describe() == "100 steps, adaptive step size"
    capped = get_spec("mnist", "apgd_ce", eps=0.1, eps_iter=0.01, iter_cap=3)
    assert (capped.eps, capped.eps_iter, capped.nb_iter) == (0.1, None, 3)  # sets its own step


def test_apgd_is_asked_for_by_name_and_never_trains():
    assert not set(APGD) & set(EVAL_ATTACKS)  # optional dependency: not in the default
    cfg = get_config("smoke", "mnist", "vanilla", eval_attacks=("pgd2",) + APGD)
    assert cfg.eval_attacks[-2:] == APGD
    with pytest.raises(GandefError, match="unknown attack"):
        get_config("smoke", "mnist", "vanilla", eval_attacks=("apgd_t",))
    with pytest.raises(GandefError, match="evaluation only"):
        generate(lambda t: t, np.zeros((1, 2), np.float32), np.zeros(1, np.int32),
                 get_spec("mnist", "apgd_ce"))


def test_without_art_one_error_line_before_any_attack(monkeypatch, images):
    monkeypatch.setattr(autoattack, "missing_reason", lambda: "IBM ART is not installed")
    monkeypatch.setattr(ev, "make_attack", lambda *a, **k: pytest.fail("an attack ran"))
    cfg = get_config("smoke", "mnist", "vanilla", eval_attacks=("pgd2", "apgd_dlr"))
    with pytest.raises(GandefError) as e:
        ev.predict(None, None, *images, cfg, verbose=0)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("apgd_dlr needs IBM ART: IBM ART is not installed")
    assert 'pip install -e ".[eval]"' in msg
    autoattack.require(["pgd2", "fgsm"])  # nothing asked of ART: fine


@pytest.fixture(scope="module")
def apgd_run(tmp_path_factory):
    """A Vanilla smoke run on the synthetic problem, evaluated with PGD-2 and both APGD
    attacks (10 steps), the APGD ones on a subset of 16 of its 32 test examples."""
    from conftest import module_dirs

    import keras

    base = tmp_path_factory.mktemp("apgd")
    with module_dirs(base):
        keras.utils.set_random_seed(0)
        cfg = get_config("smoke", "mnist", "vanilla", n_train=320, n_test=32, epochs=2,
                         attack_iter_cap=10, eval_attacks=("pgd2",) + APGD, strong_eval_n=16)
        res = ev.evaluate(cfg, verbose=0)
        pred = ev.load_predictions(runs.results_dir(cfg) / "predictions.npz")
        clf = keras.models.load_model(runs.run_dir(cfg) / "classifier.keras")
    return cfg, res, pred, clf


@needs_art
def test_apgd_rows_on_a_subset_through_evaluation(apgd_run):
    cfg, res, pred, _ = apgd_run
    idx = pred["idx_apgd_ce"]
    np.testing.assert_array_equal(idx, pred["idx_apgd_dlr"])
    np.testing.assert_array_equal(idx, ev.subset(cfg, 32))
    assert res["subset"]["attacks"] == {"apgd_ce": 16, "apgd_dlr": 16}
    clean = pred["pred_original"][idx] == pred["labels"][idx]
    assert clean.mean() >= 0.75  # the model learned the synthetic problem
    for a in APGD:
        assert len(pred[f"pred_{a}"]) == 16
        right = pred[f"pred_{a}"] == pred["labels"][idx]
        assert right.mean() < clean.mean() and res["accuracy"][a] == pytest.approx(right.mean())
        assert res["standard_error"][a] is not None
    rob = res["robustness"]
    assert set(rob["attacks"]) == {"pgd2", "apgd_ce", "apgd_dlr"} and rob["worst_case_examples"] == 16
    assert rob["worst_case"] <= min(res["accuracy"][a] for a in APGD)


@needs_art
@pytest.mark.parametrize("name", APGD)
def test_apgd_stays_in_the_threat_model(apgd_run, name):
    cfg, _, pred, clf = apgd_run
    from conftest import synthetic_mnist

    x, y = synthetic_mnist(16, 7)
    spec = dataclasses.replace(get_spec("mnist", name, iter_cap=5), eps=0.1)
    x_adv = make_attack(clf, spec)(x, y)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32 and np.isfinite(x_adv).all()
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6 and 0 <= x_adv.min() <= x_adv.max() <= 1
    assert np.mean(np.abs(x_adv - x) > 0.01) > 0.3  # it does move the pixels
