"""Adaptive attacks (beyond the paper): registry and specs, the threat model, the merged
C&W logits and the losses on hand-made numbers, the restart and candidate choices, the
equivalence with PGD-2 without a discriminator, the discriminator term at work on a
GanDef toy, and the evaluated attacks never weaker than PGD-2 on it."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import synthetic_mnist, tiny_classifier
from gandef_tf import GandefError
from gandef_tf import evaluate as ev
from gandef_tf.adaptive import (BETA_GRID, candidate_specs, choose, margin, merged_logits,
                                objective, select_restarts)
from gandef_tf.attacks import REGISTRY, RESTARTS, AttackSpec, get_spec, make_attack
from gandef_tf.config import get_config
from gandef_tf.scoring import comb_correct
from gandef_tf.methods import build_trainer
from gandef_tf.models import build_classifier, build_discriminator
from gandef_tf.training import make_datasets

ADAPTIVE = ("pgd_adaptive", "cw_merged")
pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")


@pytest.fixture(scope="module")
def nets():
    keras.utils.set_random_seed(0)
    return build_classifier("mnist"), build_discriminator()


# ---------------------------------------------------------------- registry and specs

@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_adaptive_attacks_have_pgd2s_budget(dataset):
    pgd2 = REGISTRY[dataset]["pgd2"]
    for name in ADAPTIVE:
        s = REGISTRY[dataset][name]
        assert (s.eps, s.eps_iter, s.nb_iter, s.rand_init) == (pgd2.eps, pgd2.eps_iter,
                                                               pgd2.nb_iter, True)
        assert s.restarts == RESTARTS > 1 and s.kind == name and s.beta is None
    assert REGISTRY["mnist"]["pgd_adaptive"].nb_iter == 80
    assert REGISTRY["cifar10"]["cw_merged"].nb_iter == 20


def test_specs_caps_and_descriptions():
    capped = get_spec("mnist", "cw_merged", iter_cap=2)
    assert (capped.nb_iter, capped.restarts) == (2, 2)
    assert get_spec("mnist", "pgd2").describe() == "80 steps"
    assert get_spec("mnist", "fgsm").describe() == "1 step"
    assert get_spec("mnist", "cw_merged").describe() == f"80 steps, {RESTARTS} restarts, margin loss"
    with pytest.raises(GandefError, match="restarts"):
        AttackSpec("pgd", 0.3, 0.01, 5, True, restarts=3)  # restarts only for adaptive kinds
    with pytest.raises(GandefError, match="beta"):
        AttackSpec("pgd_adaptive", 0.3, 0.01, 5, True, beta=-1.0)
    with pytest.raises(GandefError, match="exceeds eps"):
        get_spec("mnist", "pgd_adaptive", eps_iter=0.5)


def test_pgd_adaptive_against_a_discriminator_needs_a_beta(nets, images):
    clf, disc = nets
    with pytest.raises(GandefError, match="beta"):
        make_attack(clf, get_spec("mnist", "pgd_adaptive", iter_cap=1), discriminator=disc)(*images)


# ---------------------------------------------------------------- threat model

@pytest.mark.parametrize("with_disc", [False, True])
@pytest.mark.parametrize("name", ADAPTIVE)
def test_adaptive_attacks_stay_in_threat_model(name, with_disc, nets, images):
    clf, disc = nets
    x, y = images
    spec = dataclasses.replace(get_spec("mnist", name, iter_cap=2), beta=1.0)
    x_adv = make_attack(clf, spec, discriminator=disc if with_disc else None)(x, y)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32 and np.isfinite(x_adv).all()
    assert np.abs(x_adv - x).max() <= spec.eps + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert np.mean(np.abs(x_adv - x) > 0.01) > 0.5  # it does move the pixels


# ---------------------------------------------------------------- formulas by hand

def test_merged_logits_and_margin_by_hand():
    z = tf.constant([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.2]])
    z_d = tf.constant([0.5, -2.0])
    g = merged_logits(z, z_d).numpy()
    # Z - min_j Z_j = [0, 1, 2] and [0, 1.5, 1.2]; G_{N+1} = (Z_D + 1) * max: 3 and -1.5
    np.testing.assert_allclose(g, [[0, 1, 2, 3], [0, 1.5, 1.2, -1.5]], rtol=1e-6)
    y = tf.constant([2, 1])
    # max_{j != y} G_j - max(G_y, G_{N+1}): row 0: 1 - max(2, 3); row 1: 1.2 - max(1.5, -1.5)
    np.testing.assert_allclose(margin(y, tf.constant(g), 3).numpy(), [-2.0, -0.3], rtol=1e-6)
    # without the detector column: the plain C&W margin max_{j != y} Z_j - Z_y
    np.testing.assert_allclose(margin(y, z, 3).numpy(), [-1.0, -0.3], rtol=1e-6)
    # misclassified and undetected: positive
    np.testing.assert_allclose(margin(tf.constant([0]), tf.constant([[1.0, 5.0, 0.0, 2.0]]), 3)
                               .numpy(), [3.0])


def test_merged_margin_is_shift_invariant_and_sees_detection_with_negative_logits():
    # Misclassified (class 1 beats y = 0) but detected (Z_D = 1 > 0): not a success. C&W's
    # formula on the raw, all-negative logits would give G_{N+1} = 2 * -5 = -10 and a
    # margin of +5; on shifted logits the detector column wins and the margin is -5.
    z, z_d, y = tf.constant([[-10.0, -5.0, -8.0]]), tf.constant([1.0]), tf.constant([0])
    np.testing.assert_allclose(margin(y, merged_logits(z, z_d), 3).numpy(), [-5.0])
    # undetected (Z_D = -0.5 < 0): a success whatever the common offset of the logits
    for offset in (-755.0, 0.0, 40.0):
        g = merged_logits(z + offset, tf.constant([-0.5]))
        np.testing.assert_allclose(margin(y, g, 3).numpy(), [2.5], rtol=1e-5)


def test_losses_split_the_concatenated_outputs_by_hand():
    logits = tf.constant([[2.0, 0.0, 1.0, 0.7], [0.0, 3.0, 1.0, -1.5]])  # [Z (3), Z_D]
    y = tf.constant([0, 2])
    spec = dataclasses.replace(get_spec("mnist", "pgd_adaptive"), beta=2.0)
    _, loss = objective(lambda t: t, spec, disc_fn=lambda z: z)
    z = logits.numpy()[:, :3]
    ce = -(z[[0, 1], [0, 2]] - np.log(np.exp(z).sum(1)))
    expected = ce - 2.0 * np.logaddexp(0, logits.numpy()[:, 3])  # CE + beta log(1 - D)
    np.testing.assert_allclose(loss(labels=y, logits=logits).numpy(), expected, rtol=1e-5)
    _, plain = objective(lambda t: t, get_spec("mnist", "pgd_adaptive"))  # no D: CE alone
    np.testing.assert_allclose(plain(labels=y, logits=logits[:, :3]).numpy(), ce, rtol=1e-5)
    _, cw = objective(lambda t: t, get_spec("mnist", "cw_merged"), disc_fn=lambda z: z)
    g = merged_logits(logits[:, :3], logits[:, 3])
    np.testing.assert_allclose(cw(labels=y, logits=logits).numpy(), margin(y, g, 3).numpy())


def test_restart_selection_by_hand():
    # 3 restarts x 4 examples
    wrong = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], bool)
    loss = np.array([[5.0, 1.0, 2.0, 0.1], [0.0, 9.0, 3.0, 0.3], [1.0, 0.0, 4.0, 0.2]])
    disc = np.array([[0.1, 0.7, 0.9, 0.0], [0.6, 0.2, 0.0, 0.0], [0.3, 0.0, 0.0, 0.0]])
    # with D: among misclassifying restarts the one D finds most original; else top loss
    np.testing.assert_array_equal(select_restarts(wrong, loss, disc), [2, 1, 0, 1])
    # without D: a misclassifying restart (the highest loss among them); else top loss
    np.testing.assert_array_equal(select_restarts(wrong, loss), [2, 1, 0, 1])
    np.testing.assert_array_equal(select_restarts(wrong[:, :1], np.array([[1.0], [3.0], [2.0]])), [1])


def test_candidate_choice_by_hand():
    # 4 candidates x 5 examples; candidate 0 plays PGD-2's own examples
    wrong = np.array([[1, 0, 1, 0, 0], [1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 0, 0, 0]], bool)
    disc = np.array([[0.6, 0.1, 0.2, 0.5, 0.3], [0.2, 0.9, 0.0, 0.4, 0.3],
                     [0.1, 0.7, 0.9, 0.6, 0.3], [0.2, 0.0, 0.0, 0.0, 0.3]])
    # misclassified first, the lowest D among them (ties: the earlier); else the lowest D
    np.testing.assert_array_equal(choose(wrong, disc), [1, 2, 0, 3, 0])
    np.testing.assert_array_equal(choose(wrong), [0, 1, 0, 0, 0])  # no D: first misclassified
    # the kept candidate succeeds, on the classifier and on Comb at every threshold,
    # wherever any candidate does
    kept = choose(wrong, disc)
    for tau in (0.05, 0.25, 0.5, 0.65, 1.0):
        any_ok = np.any(wrong & (disc < tau), axis=0)
        np.testing.assert_array_equal(wrong[kept, range(5)] & (disc[kept, range(5)] < tau), any_ok)
    with pytest.raises(GandefError, match="probabilities"):
        choose(wrong, disc + 1.0)


def test_candidate_specs():
    spec = get_spec("mnist", "pgd_adaptive")
    cands = candidate_specs(spec, with_disc=True)
    assert [n for n, _ in cands] == ["beta 0", "beta 0.3", "beta 1", "beta 3", "beta 10"]
    assert [s.beta for _, s in cands] == list(BETA_GRID) and BETA_GRID[0] == 0.0
    assert all(s.restarts == spec.restarts for _, s in cands)
    assert candidate_specs(spec, with_disc=False) == [("pgd_adaptive", spec)]
    cw = get_spec("mnist", "cw_merged")
    assert candidate_specs(cw, with_disc=True) == [("cw_merged", cw)]
    with pytest.raises(GandefError, match="not an adaptive"):
        candidate_specs(get_spec("mnist", "pgd2"), True)


# ---------------------------------------------------------------- behaviour

def test_without_discriminator_one_restart_is_pgd2(nets, images):
    """pgd_adaptive without a discriminator and one restart is CleverHans' PGD-2 itself."""
    clf, _ = nets
    x, y = images
    tf.config.run_functions_eagerly(True)  # the global seed then fixes the random start
    try:
        tf.random.set_seed(3)
        ours = make_attack(clf, dataclasses.replace(get_spec("mnist", "pgd_adaptive", iter_cap=3),
                                                    restarts=1))(x, y)
        tf.random.set_seed(3)
        pgd2 = make_attack(clf, get_spec("mnist", "pgd2", iter_cap=3))(x, y)
    finally:
        tf.config.run_functions_eagerly(False)
    np.testing.assert_allclose(ours, pgd2, atol=1e-6)


@pytest.fixture(scope="module")
def gandef_toy():
    """GanDef (on tiny_classifier(): the attacks are tested, not LeNet) trained a few
    steps on the synthetic problem. gamma = 0 so that the
    discriminator is not yet beaten by the classifier: at gamma = 2 this toy's classifier
    fools it outright (D's logit about -25 on every example), which leaves the attack's
    discriminator term nothing to do (its gradient vanishes) and the test no signal."""
    keras.utils.set_random_seed(0)
    cfg = get_config("smoke", "mnist", "gandef", n_train=320, batch_size=32, epochs=2,
                     gamma=0.0, disc_lr=1e-2, disc_batch="reuse")
    trainer = build_trainer(cfg, classifier=tiny_classifier())
    train_ds, _ = make_datasets(cfg, synthetic_mnist(320, 1), synthetic_mnist(32, 2))
    trainer.fit(train_ds, epochs=2, verbose=0)
    return trainer.classifier, trainer.discriminator, synthetic_mnist(32, 2)


def test_discriminator_term_lowers_the_discriminators_score(gandef_toy):
    clf, disc, (x, y) = gandef_toy
    d_logit = lambda xs: float(np.mean(disc(clf(xs, training=False), training=False).numpy()))
    base = dataclasses.replace(get_spec("mnist", "pgd_adaptive", iter_cap=10), restarts=1)
    out = {}
    for beta in (0.0, 10.0):
        tf.random.set_seed(5)
        out[beta] = d_logit(make_attack(clf, dataclasses.replace(base, beta=beta),
                                        discriminator=disc)(x, y))
    # the same random start; beta = 10 pushes D's logit towards 'original'
    assert out[10.0] < out[0.0], out


def test_cw_merged_on_gandef_stays_in_threat_model(gandef_toy):
    clf, disc, (x, y) = gandef_toy
    spec = get_spec("mnist", "cw_merged", iter_cap=3)
    x_adv = make_attack(clf, spec, discriminator=disc)(x, y)
    assert np.abs(x_adv - x).max() <= spec.eps + 1e-6 and 0 <= x_adv.min() <= x_adv.max() <= 1


@pytest.mark.parametrize("with_disc", [True, False])
def test_evaluated_adaptive_attacks_are_never_weaker_than_pgd2(gandef_toy, with_disc):
    """Per example and at every threshold: wherever PGD-2 succeeds (misclassified; for
    GanDef-Comb also unflagged), both adaptive attacks do, PGD-2's examples (same random
    start: its own) being one of their candidates."""
    clf, disc, (x, y) = gandef_toy
    disc = disc if with_disc else None
    cfg = get_config("smoke", "mnist", "gandef", attack_iter_cap=10)
    p = ev.predict(clf, disc, x, y, cfg, ["original", "pgd2", "pgd_adaptive", "cw_merged"], 0)
    wrong = lambda a: p[f"pred_{a}"] != y
    assert wrong("pgd2").mean() > wrong("original").mean()  # PGD-2 does succeed somewhere
    names = ["pgd2"] + (["beta 0", "beta 0.3", "beta 1", "beta 3", "beta 10"] if with_disc
                        else ["pgd_adaptive"])
    assert p["candidates_pgd_adaptive"].tolist() == names
    for a in ("pgd_adaptive", "cw_merged"):
        assert np.all(wrong(a)[wrong("pgd2")])
        assert wrong(a).mean() >= wrong("pgd2").mean()
        assert "idx_" + a not in p  # 32 examples < strong_eval_n: all of them
        if with_disc:
            for tau in np.linspace(0, 1, 21):
                ok = lambda n: comb_correct(p[f"pred_{n}"], y, p[f"disc_{n}"], tau, True)
                assert np.all(~ok(a)[~ok("pgd2")]) and ok(a).mean() <= ok("pgd2").mean()


def test_pgd2_candidate_alone_keeps_an_adaptive_attack_as_strong(gandef_toy, monkeypatch):
    """With candidates that do nothing (the original images), what is left of an adaptive
    attack is PGD-2's own examples: per example exactly PGD-2's outcome where it
    succeeds. Without the PGD-2 candidate this would be the clean accuracy."""
    clf, disc, (x, y) = gandef_toy
    cfg = get_config("smoke", "mnist", "gandef", attack_iter_cap=10)
    real = ev.make_attack
    monkeypatch.setattr(ev, "make_attack", lambda m, spec, *a: (lambda xb, yb: xb)
                        if spec.kind in ("pgd_adaptive", "cw_merged") else real(m, spec, *a))
    p = ev.predict(clf, disc, x, y, cfg, ["original", "pgd2", "pgd_adaptive"], 0)
    wrong = lambda a: p[f"pred_{a}"] != y
    assert wrong("pgd2").sum() > wrong("original").sum()
    np.testing.assert_array_equal(wrong("pgd_adaptive"), wrong("pgd2") | wrong("original"))
    from_pgd2 = p["cand_pgd_adaptive"] == 0
    assert np.all(from_pgd2[wrong("pgd2") & ~wrong("original")])
    np.testing.assert_array_equal(p["pred_pgd_adaptive"][from_pgd2], p["pred_pgd2"][from_pgd2])
