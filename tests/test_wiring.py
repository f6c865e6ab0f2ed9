"""How training is wired together: each decision fails a test here (or in
test_wiring_attack.py) when it is changed.

Here: the networks runs build, the discriminator's direction, weight decay's sign, the
optimizers (lr schedule, momentum, `lr` for the classifier and `disc_lr` for the
discriminator) and the discriminator's data stream. test_wiring_attack.py: the losses of
the real train_steps from the real attack (the logit-pairing weight among them), the
training attack's inputs (true labels, inference mode) and GanDef-Comb's threshold end to
end through evaluate(). Every test runs the real train_step (or the real method a
train_step calls) with the real attack, on a tiny classifier passed to
build_trainer(cfg, classifier=...), so each takes about a second.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import synthetic_mnist, tiny_classifier, weights_of
from gandef_tf import losses
from gandef_tf.config import GANDEF_LOSSES, get_config
from gandef_tf.methods import build_trainer
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
