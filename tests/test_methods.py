"""Losses against hand-computed numpy values, and each method's training step: it runs,
its loss is finite, and it moves exactly the variables it should."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import changed, copy_of, synthetic_mnist, tiny_classifier, weights_of
from gandef_tf import config, losses
from gandef_tf.config import get_config
from gandef_tf.methods import build_trainer
from gandef_tf.models import build_classifier, build_discriminator
from gandef_tf.training import make_datasets

B = 8  # examples per batch; the steps run on tiny_classifier(), not LeNet's 3.27M parameters


def softplus(t):
    return np.logaddexp(0.0, t)


def np_ce(y, z):
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(y)), y]))


@pytest.fixture
def logits():
    rng = np.random.default_rng(0)
    return dict(y=rng.integers(0, 10, 6).astype(np.int32),
                z_clean=rng.normal(0, 3, (6, 10)).astype(np.float32),
                z_adv=rng.normal(0, 3, (6, 10)).astype(np.float32),
                d_clean=rng.normal(0, 2, (6, 1)).astype(np.float32),
                d_adv=rng.normal(0, 2, (6, 1)).astype(np.float32))


# ---------------------------------------------------------------- losses

def test_cross_entropy(logits):
    y, z = logits["y"], logits["z_clean"]
    assert float(losses.cross_entropy(y, z)) == pytest.approx(np_ce(y, z), rel=1e-5)
    # hand case: uniform logits give log(10)
    assert float(losses.cross_entropy(np.array([3]), np.zeros((1, 10), np.float32))) == \
        pytest.approx(np.log(10), rel=1e-6)


def test_logit_pairing_is_mean_squared_difference_over_all_logits(logits):
    a, b = logits["z_clean"], logits["z_adv"]
    assert float(losses.logit_pairing(a, b)) == pytest.approx(float(np.mean((a - b) ** 2)), rel=1e-5)
    one = np.zeros((2, 10), np.float32)
    two = one.copy()
    two[0, 0] = 2.0
    assert float(losses.logit_pairing(one, two)) == pytest.approx(4.0 / 20)


def test_discriminator_loss_original_is_0_adversarial_is_1(logits):
    dc, da = logits["d_clean"], logits["d_adv"]
    # BCE with target 0 is softplus(d), with target 1 is softplus(-d)
    expected = np.mean(np.concatenate([softplus(dc), softplus(-da)]))
    assert float(losses.discriminator_loss(dc, da)) == pytest.approx(expected, rel=1e-5)
    # a confident, right discriminator has a small loss; the same one swapped, a large one
    lo = float(losses.discriminator_loss(np.full((4, 1), -9.0, np.float32), np.full((4, 1), 9.0, np.float32)))
    hi = float(losses.discriminator_loss(np.full((4, 1), 9.0, np.float32), np.full((4, 1), -9.0, np.float32)))
    assert lo < 1e-3 and hi > 8


def test_gandef_classifier_loss_v2_uses_adversarial_examples_only(logits):
    L = logits
    ce = np_ce(np.concatenate([L["y"], L["y"]]), np.concatenate([L["z_clean"], L["z_adv"]]))
    expected = ce - 2.0 * np.mean(softplus(-L["d_adv"]))
    got = losses.gandef_classifier_loss(L["y"], L["z_clean"], L["z_adv"], L["d_clean"],
                                        L["d_adv"], gamma=2.0)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # V2 ignores D's output on original examples
    got2 = losses.gandef_classifier_loss(L["y"], L["z_clean"], L["z_adv"], L["d_clean"] + 5,
                                         L["d_adv"], gamma=2.0)
    assert float(got2) == pytest.approx(float(got), rel=1e-6)


def test_gandef_classifier_loss_v1_uses_all_examples(logits):
    L = logits
    ce = np_ce(np.concatenate([L["y"], L["y"]]), np.concatenate([L["z_clean"], L["z_adv"]]))
    d = np.mean(np.concatenate([softplus(L["d_clean"]), softplus(-L["d_adv"])]))
    got = losses.gandef_classifier_loss(L["y"], L["z_clean"], L["z_adv"], L["d_clean"],
                                        L["d_adv"], gamma=0.5, v1=True)
    assert float(got) == pytest.approx(ce - 0.5 * d, rel=1e-5)


def test_l2_weight_decay_sums_half_squared_kernels_only():
    disc = build_discriminator()
    for layer in disc.layers:
        if hasattr(layer, "bias") and layer.bias is not None:
            layer.bias.assign(np.ones(layer.bias.shape, np.float32))  # biases must not count
    kernels = [l.kernel.numpy() for l in disc.layers if hasattr(l, "kernel")]
    assert len(kernels) == 3
    expected = 1e-3 * sum(float(np.sum(k.astype(np.float64) ** 2)) / 2 for k in kernels)
    assert float(losses.l2_weight_decay(disc, 1e-3)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.l2_weight_decay(disc, 0.0)) == 0.0


def test_l2_weight_decay_covers_lenet_conv_and_dense_kernels():
    clf = build_classifier("mnist")
    kernels = [l.kernel.numpy() for l in clf.layers if hasattr(l, "kernel")]
    assert len(kernels) == 4  # conv1, conv2, fc1, logits
    expected = 2e-4 * sum(float(np.sum(k.astype(np.float64) ** 2)) / 2 for k in kernels)
    assert float(losses.l2_weight_decay(clf, 2e-4)) == pytest.approx(expected, rel=1e-4)


# ---------------------------------------------------------------- one step of each method

def batch(n=B, seed=0):
    x, y = synthetic_mnist(n, seed)
    return tf.constant(x), tf.constant(y)


def marker_like(x):
    """A recognisable stand-in for adversarial examples: the negative image."""
    return tf.constant(1.0 - np.asarray(x))


def smoke(method, **overrides):
    return get_config("smoke", "mnist", method, batch_size=B, **overrides)


def twin_classifiers(n=2):
    first = tiny_classifier()
    return [first] + [copy_of(first) for _ in range(n - 1)]


@pytest.mark.parametrize("method", config.METHODS)
def test_every_method_trains_one_step_with_fit(method):
    cfg = smoke(method, n_train=B, epochs=1)
    trainer = build_trainer(cfg, classifier=tiny_classifier())
    c0 = weights_of(trainer.classifier)
    d0 = weights_of(trainer.discriminator) if cfg.is_gandef else None
    train_ds, _ = make_datasets(cfg, synthetic_mnist(B, 0), synthetic_mnist(B, 1))
    hist = trainer.fit(train_ds, epochs=1, shuffle=False, verbose=0).history
    assert np.isfinite(hist["loss"][0]) and 0 <= hist["accuracy"][0] <= 1
    assert all(changed(c0, weights_of(trainer.classifier)))
    if cfg.is_gandef:
        assert np.isfinite(hist["d_loss"][0])
        assert all(changed(d0, weights_of(trainer.discriminator)))  # disc_batch="fresh"
    else:
        assert not hasattr(trainer, "discriminator")


def test_pure_pgd_trains_on_adversarial_examples_only():
    c_pure, c_van, c_van_x = twin_classifiers(3)
    x, y = batch()
    m = marker_like(x)
    pure = build_trainer(smoke("pure_pgd"), classifier=c_pure)
    seen = []
    pure.adversarial = lambda xx, yy: (seen.append(np.asarray(xx)), m)[1]
    pure.train_step((x, y))
    np.testing.assert_array_equal(seen[0], x.numpy())  # attacked the batch it got
    build_trainer(smoke("vanilla"), classifier=c_van).train_step((m, y))
    build_trainer(smoke("vanilla"), classifier=c_van_x).train_step((x, y))
    for a, b in zip(c_pure.get_weights(), c_van.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not all(np.allclose(a, b) for a, b in zip(c_pure.get_weights(), c_van_x.get_weights()))


def test_mix_pgd_trains_on_original_and_adversarial_examples():
    c_mix, c_van = twin_classifiers(2)
    x, y = batch()
    m = marker_like(x)
    mix = build_trainer(smoke("mix_pgd"), classifier=c_mix)
    mix.adversarial = lambda xx, yy: m
    mix.train_step((x, y))
    build_trainer(smoke("vanilla"), classifier=c_van).train_step(
        (tf.concat([x, m], 0), tf.concat([y, y], 0)))
    for a, b in zip(c_mix.get_weights(), c_van.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_logit_pairing_adds_weighted_mean_squared_logit_difference():
    c_lp, c_mix, c_lp_same, c_mix_same = twin_classifiers(4)
    x, y = batch()
    m = marker_like(x)
    z = c_lp(tf.concat([x, m], 0), training=False).numpy()
    yy = np.concatenate([y.numpy(), y.numpy()])
    expected = np_ce(yy, z) + 0.5 * np.mean((z[:B] - z[B:]) ** 2)
    lp = build_trainer(smoke("logit_pairing", alp_weight=0.5), classifier=c_lp)
    lp.adversarial = lambda xx, yy: m
    out = lp.train_step((x, y))
    assert float(out["loss"]) == pytest.approx(expected, rel=1e-4)
    mix = build_trainer(smoke("mix_pgd"), classifier=c_mix)
    mix.adversarial = lambda xx, yy: m
    assert float(mix.train_step((x, y))["loss"]) == pytest.approx(np_ce(yy, z), rel=1e-4)
    # with identical pairs the pairing term and its gradient vanish: same step as Mix PGD
    for trainer, c in ((build_trainer(smoke("logit_pairing"), classifier=c_lp_same), c_lp_same),
                       (build_trainer(smoke("mix_pgd"), classifier=c_mix_same), c_mix_same)):
        trainer.adversarial = lambda xx, yy: xx
        trainer.train_step((x, y))
    for a, b in zip(c_lp_same.get_weights(), c_mix_same.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_weight_decay_changes_the_classifier_step():
    c_wd, c_plain = twin_classifiers(2)
    x, y = batch()
    build_trainer(smoke("vanilla", weight_decay=1.0), classifier=c_wd).train_step((x, y))
    build_trainer(smoke("vanilla"), classifier=c_plain).train_step((x, y))
    assert not all(np.allclose(a, b) for a, b in zip(c_wd.get_weights(), c_plain.get_weights()))


# ---------------------------------------------------------------- GanDef's two players

def gandef(method="gandef", **overrides):
    return build_trainer(smoke(method, **overrides), classifier=tiny_classifier())


def gandef_data(k=1):
    (x, y), (xd, yd) = batch(B, 0), batch(B * k, 1)
    return (x, y), (xd, yd)


def test_discriminator_update_moves_only_the_discriminator():
    trainer = gandef()
    x, _ = batch()
    z = trainer.classifier(x, training=False)
    c0, d0 = weights_of(trainer.classifier), weights_of(trainer.discriminator)
    trainer.discriminator_update(z, z + 1.0)
    assert not any(changed(c0, weights_of(trainer.classifier)))
    assert all(changed(d0, weights_of(trainer.discriminator)))


@pytest.mark.parametrize("method", ["gandef", "gandef_v1"])
def test_classifier_update_leaves_the_discriminator_alone(method, monkeypatch):
    trainer = gandef(method)
    (x, y), _ = data = gandef_data()
    m = marker_like(x)
    trainer.adversarial = lambda xx, yy: m
    trainer.discriminator_update = lambda z_clean, z_adv: None  # skip the D steps
    z = trainer.classifier(tf.concat([x, m], 0), training=False)
    dz = trainer.discriminator(z, training=False)
    expected = losses.gandef_classifier_loss(y, z[:B], z[B:], dz[:B], dz[B:], gamma=2.0,
                                             v1=method == "gandef_v1",
                                             form=trainer.cfg.gandef_loss)
    c0, d0 = weights_of(trainer.classifier), weights_of(trainer.discriminator)
    out = trainer.train_step(data)
    assert not any(changed(d0, weights_of(trainer.discriminator)))
    assert all(changed(c0, weights_of(trainer.classifier)))
    assert float(out["loss"]) == pytest.approx(float(expected), rel=1e-4)
    assert np.isfinite(float(out["loss"]))


def test_gandef_v1_and_v2_take_different_steps():
    x, y = batch()
    results = []
    for method in ("gandef", "gandef_v1"):
        keras.utils.set_random_seed(0)
        trainer = gandef(method, gamma=5.0)
        trainer.adversarial = lambda xx, yy: marker_like(xx)
        trainer.discriminator_update = lambda z_clean, z_adv: None
        trainer.train_step(((x, y), batch(B, 1)))
        results.append(trainer.classifier.get_weights())
    assert not all(np.allclose(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("k", [1, 2])
def test_fresh_discriminator_batches_come_from_the_second_stream(k):
    """Algorithm 1: k D updates, each on its own freshly sampled batch, before C's step."""
    trainer = gandef(disc_steps=k)
    (x, y), (xd, yd) = gandef_data(k)
    calls = []
    original = trainer.discriminator_update
    trainer.discriminator_update = lambda zc, za: (calls.append((np.asarray(zc), np.asarray(za))),
                                                  original(zc, za))[1]
    z_expected = trainer.classifier(xd, training=False).numpy()
    c0, d0 = weights_of(trainer.classifier), weights_of(trainer.discriminator)
    out = trainer.train_step(((x, y), (xd, yd)))
    assert len(calls) == k
    for i, (zc, za) in enumerate(calls):
        np.testing.assert_allclose(zc, z_expected[i * B:(i + 1) * B], rtol=1e-4, atol=1e-5)
        assert zc.shape == za.shape == (B, 10) and not np.allclose(zc, za)
    assert all(changed(c0, weights_of(trainer.classifier)))
    assert all(changed(d0, weights_of(trainer.discriminator)))
    assert np.isfinite(float(out["loss"])) and np.isfinite(float(out["d_loss"]))


def test_reused_discriminator_batch_is_the_classifier_batch():
    trainer = gandef(disc_batch="reuse")
    (x, y), data_d = gandef_data()
    m = marker_like(x)
    trainer.adversarial = lambda xx, yy: m
    calls = []
    original = trainer.discriminator_update
    trainer.discriminator_update = lambda zc, za: (calls.append((np.asarray(zc), np.asarray(za))),
                                                  original(zc, za))[1]
    z = trainer.classifier(tf.concat([x, m], 0), training=True).numpy()
    d0 = weights_of(trainer.discriminator)
    trainer.train_step(((x, y), data_d))
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0][0], z[:B], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(calls[0][1], z[B:], rtol=1e-4, atol=1e-5)
    assert all(changed(d0, weights_of(trainer.discriminator)))
