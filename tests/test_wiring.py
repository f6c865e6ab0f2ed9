"""How training is wired together: each decision fails a test here when it is changed.

The discriminator's direction, weight decay's sign, the optimizers (lr schedule, momentum,
`lr` for the classifier and `disc_lr` for the discriminator), the discriminator's data
stream, the logit-pairing weight, the training attack's inputs (true labels, inference
mode) and GanDef-Comb's threshold end to end through evaluate(). Every test runs the real
train_step (or the real method a train_step calls) with the real attack, on a tiny
classifier passed to build_trainer(cfg, classifier=...), so each takes about a second.
The tests of test_methods.py that stub the attack to isolate one thing have their
real-attack counterpart in test_reported_losses_follow_from_the_real_attack.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import copy_of, patch_load_data, synthetic_mnist, tiny_classifier, weights_of
from gandef_tf import losses, runs
from gandef_tf.config import GANDEF_LOSSES, get_config
from gandef_tf.methods import build_trainer
from gandef_tf.models import build_discriminator
from gandef_tf.training import make_datasets

B = 8
EPS = 0.3  # the MNIST registry's eps, FGSM's too


def smoke(method, **overrides):
    return get_config("smoke", "mnist", method, batch_size=B, **overrides)


def batch(n=B, seed=0):
    x, y = synthetic_mnist(n, seed)
    return tf.constant(x), tf.constant(y)


def fgsm_by_hand(classifier, x, y, eps=EPS):
    """x + eps * sign(grad of the summed cross-entropy on labels y), clipped to [0, 1],
    against the classifier in inference mode."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=classifier(x, training=False))
    step = np.float32(eps) * np.sign(tape.gradient(loss, x).numpy())
    return np.clip(x.numpy() + step, 0.0, 1.0)


def spy_attack(trainer, reference=None):
    """Wrap the trainer's real training attack; each call appends (x, y, x_adv, ref),
    ref = reference(classifier, x, y) computed just before the attack runs."""
    calls, real = [], trainer.adversarial

    def spy(x, y):
        ref = reference(trainer.classifier, x, y) if reference else None
        x_adv = real(x, y)
        calls.append((np.asarray(x), np.asarray(y), np.asarray(x_adv), ref))
        return x_adv

    trainer.adversarial = spy
    return calls


def largest_move(before, model):
    return max(float(np.abs(a - b).max()) for a, b in zip(before, weights_of(model)))


# ---------------------------------------------------------------- the networks

@pytest.mark.parametrize("dataset,params", [("mnist", 3_274_634), ("cifar10", 1_406_794)])
def test_build_trainer_builds_the_papers_networks(dataset, params):
    """Runs train LeNet (MNIST) or allCNN (CIFAR-10) and the paper's discriminator; the
    pipeline tests that swap in tiny_classifier() (conftest.use_tiny_classifier) rely on it."""
    trainer = build_trainer(get_config("smoke", dataset, "gandef"))
    assert trainer.classifier.count_params() == params
    assert trainer.discriminator.count_params() == 2_529


# ---------------------------------------------------------------- the discriminator's direction

@pytest.mark.parametrize("form", GANDEF_LOSSES)
def test_discriminator_learns_to_score_adversarial_logits_higher(form):
    """A few updates on logits that are easy to tell apart: D scores the adversarial ones
    higher, and its accuracy (adversarial = 1, original = 0) rises above 0.5."""
    trainer = build_trainer(smoke("gandef", gandef_loss=form, disc_lr=1e-2),
                            classifier=tiny_classifier())
    rng = np.random.default_rng(0)
    z_clean = tf.constant(rng.normal(-2.0, 1.0, (32, 10)).astype(np.float32))
    z_adv = tf.constant(rng.normal(2.0, 1.0, (32, 10)).astype(np.float32))
    for _ in range(20):
        trainer.discriminator_update(z_clean, z_adv)
    trainer.d_acc_tracker.reset_state()
    trainer.discriminator_update(z_clean, z_adv)  # scored by D after 20 updates
    assert float(trainer.d_acc_tracker.result()) > 0.9
    score = lambda z: float(tf.reduce_mean(tf.sigmoid(trainer.discriminator(z, training=False))))
    assert score(z_adv) > 0.5 > score(z_clean)


def test_gandef_training_teaches_the_discriminator_to_flag_the_real_attack():
    """The same through fit() and the real attack: D's accuracy on the training stream
    rises above 0.5 and it scores the classifier's logits of attacked images higher."""
    cfg = smoke("gandef", train_attack="fgsm", gamma=0.0, disc_lr=1e-2, n_train=64, epochs=4)
    trainer = build_trainer(cfg, classifier=tiny_classifier())
    train, _ = make_datasets(cfg, synthetic_mnist(64, 0), synthetic_mnist(8, 1))
    hist = trainer.fit(train, epochs=cfg.epochs, shuffle=False, verbose=0).history
    assert hist["d_accuracy"][-1] > 0.5
    x, y = batch(32, 2)
    x_adv = fgsm_by_hand(trainer.classifier, x, y)
    d = lambda t: tf.sigmoid(trainer.discriminator(trainer.classifier(t, training=False),
                                                   training=False)).numpy()
    assert d(x_adv).mean() > d(x).mean()


# ---------------------------------------------------------------- weight decay

@pytest.mark.parametrize("method", ["vanilla", "gandef"])
def test_weight_decay_pulls_every_kernel_towards_zero(method):
    """SGD without momentum: the step with weight decay c differs from the same step
    without it by exactly -lr * c * kernel (the gradient of c * sum(kernel**2) / 2), and
    a bias not at all."""
    lr, c = 0.1, 0.5
    x, y = batch()
    data = ((x, y), batch(B, 1)) if method == "gandef" else (x, y)
    after = []
    for wd in (c, 0.0):
        clf = tiny_classifier()
        trainer = build_trainer(smoke(method, optimizer="sgd", momentum=0.0, lr=lr,
                                      weight_decay=wd), classifier=clf)
        before = [v.numpy() for v in clf.trainable_variables]
        keras.utils.set_random_seed(1)  # the same random starts in both runs
        trainer.train_step(data)
        after.append([v.numpy() for v in clf.trainable_variables])
    for var, w0, with_wd, without in zip(clf.trainable_variables, before, *after):
        if var.name == "kernel":
            np.testing.assert_allclose(with_wd - without, -lr * c * w0, rtol=1e-3, atol=1e-6)
        else:
            np.testing.assert_allclose(with_wd, without, rtol=0, atol=1e-7)
    assert sum(v.name == "kernel" for v in clf.trainable_variables) == 2


# ---------------------------------------------------------------- the optimizers

def ce_gradients(classifier, x, y):
    with tf.GradientTape() as tape:
        loss = losses.cross_entropy(y, classifier(x, training=True))
    return [g.numpy() for g in tape.gradient(loss, classifier.trainable_variables)]


def test_sgd_follows_the_lr_schedule_with_momentum():
    """Vanilla with SGD, momentum 0.9, and a schedule 0.1 then 0.01 after step 1 (cfg.lr
    0.5 is a decoy the schedule replaces): each step is v = 0.9 v - lr_t g; w += v."""
    clf = tiny_classifier()
    trainer = build_trainer(smoke("vanilla", optimizer="sgd", momentum=0.9, lr=0.5,
                                  lr_boundaries=(1,), lr_values=(0.1, 0.01)), classifier=clf)
    x, y = batch()
    velocity = [np.zeros(v.shape, np.float32) for v in clf.trainable_variables]
    for lr_t in (0.1, 0.1, 0.01):
        g = ce_gradients(clf, x, y)
        w = [v.numpy() for v in clf.trainable_variables]
        trainer.train_step((x, y))
        velocity = [0.9 * v - lr_t * gi for v, gi in zip(velocity, g)]
        for var, w0, v in zip(clf.trainable_variables, w, velocity):
            np.testing.assert_allclose(var.numpy() - w0, v, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("disc_batch", ["fresh", "reuse"])
def test_gandef_classifier_steps_at_lr_and_discriminator_at_disc_lr(disc_batch):
    """Adam's first step moves a weight by lr * g / (|g| + 3e-6), about lr: the largest move
    of each player shows its optimizer's rate. The classifier's comes from the schedule
    (2e-3; cfg.lr 5e-4 is a decoy), the discriminator's is disc_lr (3e-2)."""
    cfg = smoke("gandef", lr=5e-4, lr_boundaries=(100,), lr_values=(2e-3, 2e-4),
                disc_lr=3e-2, disc_batch=disc_batch)
    trainer = build_trainer(cfg, classifier=tiny_classifier())
    c0, d0 = weights_of(trainer.classifier), weights_of(trainer.discriminator)
    trainer.train_step((batch(), batch(B, 1)))
    assert largest_move(c0, trainer.classifier) == pytest.approx(2e-3, rel=0.02)
    assert largest_move(d0, trainer.discriminator) == pytest.approx(3e-2, rel=0.02)
    assert int(trainer.optimizer.iterations) == int(trainer.d_optimizer.iterations) == 1


# ---------------------------------------------------------------- the discriminator's data

@pytest.mark.parametrize("k", [1, 3])
def test_discriminator_stream_is_independent_and_lasts_every_epoch(k):
    """Examples are told apart by their label (its index): every epoch the classifier
    sees each example once, in n / B steps, and each step carries k * B examples for D
    drawn independently of the classifier's batch, never running out."""
    n = 64
    x, ids = np.zeros((n, 28, 28, 1), np.float32), np.arange(n, dtype=np.int32)
    train, _ = make_datasets(smoke("gandef", disc_steps=k), (x, ids), (x[:B], ids[:B]))
    for _ in range(2):  # fit() iterates the dataset afresh each epoch
        steps = [(yc.numpy(), yd.numpy()) for (_, yc), (_, yd) in train]
        assert len(steps) == n // B
        assert sorted(np.concatenate([yc for yc, _ in steps])) == list(range(n))
        assert all(len(yd) == k * B for _, yd in steps)
        assert set(np.concatenate([yd for _, yd in steps])) == set(range(n))
        inside = sum(set(yc) <= set(yd) for yc, yd in steps)
        assert inside < len(steps) / 2  # independent: by chance, (kB choose B)/(n choose B)


def test_fit_takes_k_discriminator_steps_per_classifier_step():
    cfg = smoke("gandef", disc_steps=2, n_train=32)
    trainer = build_trainer(cfg, classifier=tiny_classifier())
    train, _ = make_datasets(cfg, synthetic_mnist(32, 0), synthetic_mnist(B, 1))
    trainer.fit(train, epochs=2, shuffle=False, verbose=0)
    assert int(trainer.optimizer.iterations) == 2 * 32 // B
    assert int(trainer.d_optimizer.iterations) == 2 * 2 * 32 // B


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
    res = ev.evaluate(cfg, verbose=0, allow_train=True)
    assert res["accuracy"] == {"original": 0.5, "fgsm": 0.5}
    assert res["comb"]["threshold"] == 0.3
    assert res["comb"]["accuracy"] == {"original": 5 / 16, "fgsm": 14 / 16}
    pred = ev.load_predictions(runs.results_dir(cfg) / "predictions.npz")
    flagged = np.repeat([0.1, 0.4, 0.1, 0.4], [5, 3, 2, 6])
    for name in ("original", "fgsm"):
        np.testing.assert_allclose(pred[f"disc_{name}"], flagged, atol=0.01)
