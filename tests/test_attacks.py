"""Attacks: the paper's registry, the threat model, agreement with CleverHans' own
functions, refusal of bad specs and batches, and an accuracy drop on a trained model."""


import keras
import numpy as np
import pytest
import tensorflow as tf
from cleverhans.tf2.attacks.basic_iterative_method import basic_iterative_method
from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

from conftest import synthetic_mnist
from gandef_tf import GandefError, attacks
from gandef_tf.attacks import (REGISTRY, AttackSpec, assert_in_threat_model, check_batch,
                               get_spec, make_attack, spec_for)
from gandef_tf.config import get_config
from gandef_tf.methods import build_trainer
from gandef_tf.models import build_classifier

PAPER_NAMES = ("fgsm", "bim", "pgd1", "pgd2")
# every registry entry (the paper's four plus the cheaper training attacks), but APGD:
# it leaves examples the model already gets wrong as they are, i.e. most of them on this
# untrained network (tests/test_autoattack.py attacks a trained one)
MNIST_NAMES = tuple(n for n in REGISTRY["mnist"] if not n.startswith("apgd_"))


@pytest.fixture(scope="module")
def lenet():
    keras.utils.set_random_seed(0)
    return build_classifier("mnist")


@pytest.fixture
def eager():
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


def model_fn(model):
    return lambda t: model(t, training=False)


# ---------------------------------------------------------------- registry (REFERENCE.md §1)

def test_mnist_registry_is_the_papers():
    r = REGISTRY["mnist"]
    assert set(PAPER_NAMES + ("fgsm_rs",)) <= set(r)
    assert (r["fgsm"].kind, r["fgsm"].eps) == ("fgsm", 0.3)
    assert (r["bim"].kind, r["bim"].eps, r["bim"].eps_iter, r["bim"].nb_iter) == ("bim", 0.3, 0.05, 10)
    for name, iters in (("pgd1", 40), ("pgd2", 80)):
        s = r[name]
        assert (s.kind, s.eps, s.eps_iter, s.nb_iter, s.rand_init) == ("pgd", 0.3, 0.01, iters, True)
    assert r["fgsm_rs"].eps_iter == pytest.approx(1.25 * 0.3) and r["fgsm_rs"].rand_init


def test_cifar10_registry_is_the_papers():
    r = REGISTRY["cifar10"]
    assert set(r) == set(REGISTRY["mnist"])
    assert r["fgsm"].eps == pytest.approx(8 / 255)
    assert (r["bim"].eps, r["bim"].eps_iter, r["bim"].nb_iter) == pytest.approx((8 / 255, 2 / 255, 10))
    for name, iters in (("pgd1", 7), ("pgd2", 20)):
        s = r[name]
        assert (s.eps, s.eps_iter) == pytest.approx((8 / 255, 2 / 255))
        assert (s.nb_iter, s.rand_init, s.kind) == (iters, True, "pgd")
    assert not r["bim"].rand_init


def test_get_spec_overrides():
    s = get_spec("mnist", "pgd2", eps=0.2, eps_iter=0.02, iter_cap=3)
    assert (s.eps, s.eps_iter, s.nb_iter, s.rand_init) == (0.2, 0.02, 3, True)
    assert get_spec("mnist", "pgd1", iter_cap=100).nb_iter == 40  # a cap never raises
    assert get_spec("mnist", "fgsm_rs", eps=0.2).eps_iter == pytest.approx(0.25)
    assert get_spec("mnist", "fgsm", eps_iter=0.1).eps_iter is None  # FGSM has no step
    assert REGISTRY["mnist"]["pgd2"].nb_iter == 80  # the registry itself is untouched
    cfg = get_config("smoke", "mnist", "vanilla", eps=0.1, attack_iter_cap=2)
    assert (spec_for(cfg, "bim").eps, spec_for(cfg, "bim").nb_iter) == (0.1, 2)
    with pytest.raises(GandefError, match="unknown attack"):
        get_spec("mnist", "cw")
    with pytest.raises(GandefError, match="unknown dataset"):
        get_spec("svhn", "fgsm")


@pytest.mark.parametrize("kwargs", [dict(eps=0), dict(eps=-0.1), dict(eps=1.5),
                                    dict(eps=0.3, eps_iter=0), dict(eps=0.3, eps_iter=2.0),
                                    dict(eps=0.3, nb_iter=0)])
def test_attack_spec_refuses_values_out_of_range(kwargs):
    with pytest.raises(GandefError):
        AttackSpec("pgd", **kwargs)


def test_attack_spec_accepts_the_bounds_and_refuses_unknown_kinds():
    assert AttackSpec("fgsm", 1.0).eps == 1.0
    with pytest.raises(GandefError, match="unknown attack kind"):
        AttackSpec("deepfool", 0.3)


@pytest.mark.parametrize("overrides", [dict(eps=0.01), dict(eps_iter=0.5)])
def test_step_larger_than_eps_is_refused_up_front(overrides):
    with pytest.raises(GandefError):
        cfg = get_config("smoke", "mnist", "vanilla", **overrides)
        for name in cfg.eval_attacks + (cfg.train_attack,):
            spec_for(cfg, name)


# ---------------------------------------------------------------- threat model

@pytest.mark.parametrize("name", MNIST_NAMES)
def test_attack_stays_in_threat_model(name, lenet, images):
    x, y = images
    spec = get_spec("mnist", name, iter_cap=3)
    x_adv = make_attack(lenet, spec)(x, y)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    assert np.isfinite(x_adv).all()
    assert np.abs(x_adv - x).max() <= spec.eps + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    # it does attack: pixels move, most of them by a sizeable fraction of eps
    assert np.mean(np.abs(x_adv - x) > 0.01) > 0.5


def test_check_batch():
    x = np.full((2, 4), 0.5, np.float32)
    ok = x + 0.3
    np.testing.assert_array_equal(check_batch(x, ok, 0.3), ok)
    with pytest.raises(GandefError, match="exceeds eps"):
        check_batch(x, x + 0.31, 0.3)
    low = np.zeros_like(x)
    low[0, 0] = -0.01
    with pytest.raises(GandefError, match=r"outside \[0, 1\]"):
        check_batch(np.zeros_like(x), low, 0.3)
    high = np.full_like(x, 0.8)
    high[1, 1] = 1.01
    with pytest.raises(GandefError, match=r"outside \[0, 1\]"):
        check_batch(high - 0.1, high, 0.3)
    nan = x.copy()
    nan[1, 2] = np.nan
    with pytest.raises(GandefError, match="NaN"):
        check_batch(x, nan, 0.3)
    inf = x.copy()
    inf[0, 3] = np.inf
    with pytest.raises(GandefError, match="NaN or Inf"):
        check_batch(x, inf, 0.3)


def test_make_attack_checks_its_output(lenet, images, monkeypatch):
    """A broken attack is caught by check_batch inside make_attack, not passed on."""
    x, y = images
    monkeypatch.setattr(attacks, "generate", lambda fn, x, y, spec, disc_fn=None: x + 0.5)
    with pytest.raises(GandefError):
        make_attack(lenet, get_spec("mnist", "fgsm"))(x, y)


def test_graph_threat_model_check():
    x = tf.fill((2, 3), 0.5)
    np.testing.assert_allclose(assert_in_threat_model(x, x + 0.3, 0.3).numpy(), 0.8)
    bad = [(x, x + 0.4, 0.3),                       # beyond eps
           (x, x - 0.6, 0.7),                       # below 0
           (x + 0.3, x + 0.6, 0.5),                 # above 1
           (x, tf.fill((2, 3), np.nan), 0.3)]       # NaN
    for xx, x_adv, eps in bad:
        with pytest.raises(tf.errors.InvalidArgumentError):
            assert_in_threat_model(xx, x_adv, eps)


# ---------------------------------------------------------------- the same as CleverHans

def test_fgsm_matches_cleverhans(lenet, images):
    x, y = images
    ours = make_attack(lenet, get_spec("mnist", "fgsm"))(x, y)
    theirs = fast_gradient_method(model_fn(lenet), tf.constant(x), 0.3, np.inf,
                                  clip_min=0.0, clip_max=1.0, y=tf.constant(y)).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # true labels are used: CleverHans' default (the model's own predictions) differs
    leaked = fast_gradient_method(model_fn(lenet), tf.constant(x), 0.3, np.inf,
                                  clip_min=0.0, clip_max=1.0).numpy()
    assert not np.allclose(ours, leaked)


def test_bim_matches_cleverhans(lenet, images):
    x, y = images
    ours = make_attack(lenet, get_spec("mnist", "bim", iter_cap=3))(x, y)
    theirs = basic_iterative_method(model_fn(lenet), tf.constant(x), 0.3, 0.05, 3, np.inf,
                                    0.0, 1.0, tf.constant(y), False,
                                    sanity_checks=False).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # deterministic
    np.testing.assert_array_equal(ours, make_attack(lenet, get_spec("mnist", "bim", iter_cap=3))(x, y))


@pytest.mark.parametrize("name", ["pgd1", "pgd2"])
def test_pgd_matches_cleverhans_with_the_same_seed(name, lenet, images, eager):
    x, y = images
    spec = get_spec("mnist", name, iter_cap=3)
    tf.random.set_seed(7)
    ours = make_attack(lenet, spec)(x, y)
    tf.random.set_seed(7)
    theirs = projected_gradient_descent(model_fn(lenet), tf.constant(x), 0.3, 0.01, 3, np.inf,
                                        clip_min=0.0, clip_max=1.0, y=tf.constant(y),
                                        rand_init=True, sanity_checks=False).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    # the random start is used: another seed gives another result
    tf.random.set_seed(8)
    assert not np.allclose(make_attack(lenet, spec)(x, y), ours)


def test_fgsm_rs_is_random_start_then_fgsm_then_projection(lenet, images, monkeypatch, eager):
    """Wong et al.: x1 = clip(x + U(-eps, eps)); FGSM step 1.25 eps from x1; project back."""
    x, y = images
    eta = np.random.default_rng(3).choice([-0.3, 0.3], x.shape).astype(np.float32)
    monkeypatch.setattr(attacks, "random_lp_vector", lambda shape, ord, eps, dtype: tf.constant(eta))
    ours = make_attack(lenet, get_spec("mnist", "fgsm_rs"))(x, y)
    x1 = np.clip(x + eta, 0, 1)
    stepped = fast_gradient_method(model_fn(lenet), tf.constant(x1), 0.375, np.inf,
                                   clip_min=0.0, clip_max=1.0, y=tf.constant(y)).numpy()
    expected = np.clip(x + np.clip(stepped - x, -0.3, 0.3), 0, 1)
    np.testing.assert_allclose(ours, expected, atol=1e-6)


# ---------------------------------------------------------------- attacks work

@pytest.fixture(scope="module")
def trained_vanilla():
    """LeNet trained briefly with build_trainer on the synthetic problem."""
    keras.utils.set_random_seed(0)
    cfg = get_config("smoke", "mnist", "vanilla", n_train=320, batch_size=32, epochs=1)
    trainer = build_trainer(cfg)
    x, y = synthetic_mnist(320, 1)
    trainer.fit(x, y, batch_size=32, epochs=1, verbose=0)
    return trainer.classifier, synthetic_mnist(64, 2)


@pytest.mark.parametrize("name", ["fgsm", "pgd1"])
def test_attacks_drop_a_trained_vanilla_models_accuracy(name, trained_vanilla):
    clf, (x, y) = trained_vanilla
    acc = lambda xs: float(np.mean(np.argmax(clf(xs, training=False).numpy(), 1) == y))
    clean = acc(x)
    assert clean >= 0.9
    adv = acc(make_attack(clf, get_spec("mnist", name, iter_cap=10))(x, y))
    assert adv <= clean - 0.5, (clean, adv)
