"""How training is wired together, with the real attack (helpers: test_wiring.py): the
losses each real train_step reports, recomputed from its attack's examples (the
logit-pairing weight, D's loss), the training attack's inputs (true labels, inference
mode), and GanDef-Comb's threshold end to end through evaluate(). The tests of
test_methods.py that stub the attack to isolate one thing have their real-attack
counterpart in test_reported_losses_follow_from_the_real_attack.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import copy_of, patch_load_data, tiny_classifier
from gandef_tf import losses, runs
from gandef_tf.config import get_config
from gandef_tf.methods import build_trainer
from gandef_tf.models import build_discriminator
from test_wiring import B, batch, fgsm_by_hand, smoke, spy_attack

# ---------------------------------------------------------------- losses of the real train_steps

def expected_losses(method, cfg, c0, d0, d1, calls, x, y):
    """(classifier loss, discriminator loss or None) recomputed from the attack's recorded
    examples: c0 / d0 the players before the step, d1 the discriminator after it."""
    if method == "vanilla":
        return float(losses.cross_entropy(y, c0(x, training=True))), None
    x_adv = calls[-1][2]
    if method == "pure_pgd":
        return float(losses.cross_entropy(y, c0(x_adv, training=True))), None
    z = c0(tf.concat([x, x_adv], 0), training=True)
    z_clean, z_adv = z[:B], z[B:]
    if not cfg.is_gandef:
        pairing = cfg.alp_weight * losses.logit_pairing(z_clean, z_adv) \
            if method == "logit_pairing" else 0.0
        return float(losses.cross_entropy(tf.concat([y, y], 0), z) + pairing), None
    c = losses.gandef_classifier_loss(y, z_clean, z_adv, d1(z_clean), d1(z_adv), cfg.gamma,
                                      method == "gandef_v1", cfg.gandef_loss)
    xd, xd_adv = calls[0][0], calls[0][2]  # fresh: D's own batch; reuse: C's
    zd = c0(tf.concat([xd, xd_adv], 0), training=True)
    d = losses.discriminator_loss(d0(zd[:B]), d0(zd[B:]), cfg.gandef_loss)
    return float(c), float(d)


@pytest.mark.parametrize("method,extra", [
    ("vanilla", {}), ("pure_pgd", {}), ("mix_pgd", {}), ("logit_pairing", {"alp_weight": 0.2}),
    ("gandef", {}), ("gandef", {"disc_batch": "reuse"}), ("gandef_v1", {}),
    ("gandef", {"gandef_loss": "authors_code", "gamma": 0.7})],
    ids=["vanilla", "pure_pgd", "mix_pgd", "logit_pairing_w0.2", "gandef", "gandef_reuse",
         "gandef_v1", "gandef_authors_code"])
def test_reported_losses_follow_from_the_real_attack(method, extra):
    """The loss each real train_step reports (the one it differentiates) is recomputed
    from the examples its real attack returned: the attacked batches are the right ones,
    the logit-pairing weight w multiplies the pairing term (w = 0.2, so 1 - w would show),
    D's loss has original examples as 0 and adversarial as 1."""
    cfg = smoke(method, **extra)
    clf = tiny_classifier()
    trainer = build_trainer(cfg, classifier=clf)
    c0 = copy_of(clf)
    d0 = copy_of(trainer.discriminator) if cfg.is_gandef else None
    calls = spy_attack(trainer)
    (x, y), (xd, yd) = batch(), batch(B, 1)
    out = trainer.train_step(((x, y), (xd, yd)) if cfg.is_gandef else (x, y))
    attacked = [] if method == "vanilla" else [x] if not cfg.is_gandef or \
        cfg.disc_batch == "reuse" else [xd, x]
    assert len(calls) == len(attacked)
    for (cx, cy, _, _), ex in zip(calls, attacked):
        np.testing.assert_array_equal(cx, ex.numpy())
    c, d = expected_losses(method, cfg, c0, d0, getattr(trainer, "discriminator", None),
                           calls, x, y)
    assert float(out["loss"]) == pytest.approx(c, rel=1e-5)
    if d is not None:
        assert float(out["d_loss"]) == pytest.approx(d, rel=1e-5)
    if method == "logit_pairing":  # the pairing term is large enough to tell w from 1 - w
        z = c0(tf.concat([x, calls[0][2]], 0), training=True)
        assert 0.6 * float(losses.logit_pairing(z[:B], z[B:])) > 1e-3 * c


# ---------------------------------------------------------------- the training attack's inputs

ATTACKED = [("pure_pgd", {}), ("mix_pgd", {}), ("logit_pairing", {}), ("gandef", {}),
            ("gandef", {"disc_batch": "reuse"}), ("gandef_v1", {})]


@pytest.mark.parametrize("method,extra", ATTACKED,
                         ids=["pure_pgd", "mix_pgd", "logit_pairing", "gandef", "gandef_reuse",
                              "gandef_v1"])
def test_training_attack_uses_true_labels_and_inference_mode(method, extra):
    """Training FGSM examples equal FGSM by hand against the classifier in inference mode
    (it has dropout: in training mode the gradient would differ) on the batch's own
    labels, chosen to differ from the classifier's predictions."""
    clf = tiny_classifier(dropout=0.5)
    cfg = smoke(method, train_attack="fgsm", **extra)
    trainer = build_trainer(cfg, classifier=clf)
    (x, _), (xd, _) = batch(), batch(B, 1)
    not_predicted = lambda t: tf.constant(
        (np.argmax(clf(t, training=False).numpy(), 1) + 1) % 10, tf.int32)
    y, yd = not_predicted(x), not_predicted(xd)
    ref = fgsm_by_hand(clf, x, y)
    assert not np.allclose(ref, fgsm_by_hand(clf, x, (y + 9) % 10))  # the labels matter
    calls = spy_attack(trainer, reference=fgsm_by_hand)
    trainer.train_step(((x, y), (xd, yd)) if cfg.is_gandef else (x, y))
    fresh = cfg.is_gandef and cfg.disc_batch == "fresh"
    batches = [(xd, yd), (x, y)] if fresh else [(x, y)]
    assert len(calls) == len(batches)
    for (cx, cy, x_adv, expected), (bx, by) in zip(calls, batches):
        np.testing.assert_array_equal(cx, bx.numpy())
        np.testing.assert_array_equal(cy, by.numpy())
        np.testing.assert_allclose(x_adv, expected, rtol=0, atol=1e-6)


def test_training_attack_is_deterministic_under_dropout():
    """With the same random start, the training attack of a classifier with dropout gives
    the same examples twice: it runs the classifier in inference mode."""
    clf = tiny_classifier(dropout=0.5)
    trainer = build_trainer(smoke("mix_pgd"), classifier=clf)  # smoke: FGSM, random start
    x, y = batch()
    assert not np.allclose(clf(x, training=True), clf(x, training=True))  # dropout is live
    found = []
    for seed in (3, 3, 4):
        keras.utils.set_random_seed(seed)
        found.append(trainer.adversarial(x, y).numpy())
    np.testing.assert_array_equal(found[0], found[1])
    assert not np.array_equal(found[0], found[2])  # another start, other examples


# ---------------------------------------------------------------- GanDef-Comb through evaluate

def hand_models():
    """A classifier whose logits read pixels: class c (0-8) from pixel (0, c), x10, and
    logit 9 from a 'flag' pixel (0, 20), x4; and a discriminator (the real architecture)
    whose logit is 0.448 * logit 9 - 2.197: sigmoid 0.1 unflagged, 0.4 flagged."""
    keras.mixed_precision.set_global_policy("float32")
    inputs = keras.Input((28, 28, 1), name="image")
    flat = keras.layers.Flatten(name="flatten")(inputs)
    clf = keras.Model(inputs, keras.layers.Dense(10, name="logits")(flat), name="hand")
    kernel = np.zeros((784, 10), np.float32)
    kernel[np.arange(9), np.arange(9)] = 10.0
    kernel[20, 9] = 4.0
    clf.set_weights([kernel, np.zeros(10, np.float32)])
    disc = build_discriminator()
    w = [np.zeros(v.shape, np.float32) for v in disc.weights]  # k1 b1 k2 b2 k3 b3
    w[0][9, 0] = w[2][0, 0] = 1.0
    lo, hi = np.log(0.1 / 0.9), np.log(0.4 / 0.6)
    w[4][0, 0], w[5][0] = (hi - lo) / 4.0, lo
    disc.set_weights(w)
    return clf, disc


def hand_test_set():
    """16 images: right and unflagged 5, right and flagged 3, wrong and unflagged 2,
    wrong and flagged 6 (the prediction is the pixel set, the label may differ)."""
    groups = [(5, True, 0.0), (3, True, 1.0), (2, False, 0.0), (6, False, 1.0)]
    x, y = [], []
    for count, right, flag in groups:
        for i in range(count):
            img = np.zeros((28, 28, 1), np.float32)
            pred = i % 9
            img[0, pred, 0], img[0, 20, 0] = 1.0, flag
            x.append(img)
            y.append(pred if right else (pred + 1) % 9)
    return np.stack(x), np.array(y, np.int32)


def test_comb_threshold_end_to_end_through_evaluate(monkeypatch):
    """A finished GanDef run with hand-set models; at tau = 0.3 its discriminator scores
    (0.1 and 0.4) lie on both sides. FGSM at eps 0.01 changes neither prediction nor side.
    GanDef-Comb: an original example counts when right and unflagged (5 of 16), an
    adversarial one when right or flagged (5 + 3 + 6 of 16); at the default 0.5 nothing
    would be flagged."""
    from gandef_tf import evaluate as ev

    x, y = hand_test_set()
    patch_load_data(monkeypatch, lambda cfg: ((x, y), (x, y)))
    cfg = get_config("smoke", "mnist", "gandef", threshold=0.3, eval_attacks=("fgsm",),
                     eps=0.01, n_test=len(y))
    clf, disc = hand_models()
    rdir = runs.prepare(cfg)
    clf.save(rdir / "classifier.keras")
    disc.save(rdir / "discriminator.keras")
    runs.write_json(rdir / "train.json", {"train_seconds": 0.0})
    res = ev.evaluate(cfg, verbose=0)
    assert res["accuracy"] == {"original": 0.5, "fgsm": 0.5}
    assert res["comb"]["threshold"] == 0.3
    assert res["comb"]["accuracy"] == {"original": 5 / 16, "fgsm": 14 / 16}
    pred = ev.load_predictions(runs.results_dir(cfg) / "predictions.npz")
    flagged = np.repeat([0.1, 0.4, 0.1, 0.4], [5, 3, 2, 6])
    for name in ("original", "fgsm"):
        np.testing.assert_allclose(pred[f"disc_{name}"], flagged, atol=0.01)
