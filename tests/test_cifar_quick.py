"""The pieces the CIFAR-10 CPU-scale reproduction rests on: GanDef's two loss forms, the
validation hold-out, per-image augmentation, the shared clean pre-training, and the
discriminator reading one kind of logits in both of its roles."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import synthetic_mnist
from gandef_tf import losses, runs, training
from gandef_tf.config import get_config
from gandef_tf.gandef import GanDef
from gandef_tf.methods import make_optimizer
from gandef_tf.models import build_discriminator

TABLE2 = ("vanilla", "pure_pgd", "mix_pgd", "logit_pairing", "gandef")


# ---------------------------------------------------------------- the two loss forms

def test_authors_code_loss_applies_the_sigmoid_twice():
    d = np.array([[0.0], [-50.0], [3.0]], np.float32)
    s = 1 / (1 + np.exp(-d[:, 0].astype(np.float64)))  # sigmoid(d), taken as a logit again
    expected_adv = np.log1p(np.exp(-s))  # BCE(logit=s, label=1) = softplus(-s)
    expected_clean = np.log1p(np.exp(s))  # label 0: softplus(s)
    np.testing.assert_allclose(losses.source_bce(d, 1, "authors_code").numpy()[:, 0],
                               expected_adv, rtol=1e-5)
    np.testing.assert_allclose(losses.source_bce(d, 0, "authors_code").numpy()[:, 0],
                               expected_clean, rtol=1e-5)
    # by hand: d = 0 -> s = 0.5 -> softplus(-0.5) = 0.474077, softplus(0.5) = 0.974077
    assert float(losses.source_bce(d[:1], 1, "authors_code")[0, 0]) == pytest.approx(0.474077, rel=1e-5)
    # a discriminator driven to -inf outputs exactly ln 2 for both sources, and no gradient
    assert float(losses.discriminator_loss(d[1:2], d[1:2], "authors_code")) == pytest.approx(
        np.log(2), rel=1e-6)
    x = tf.constant(d[1:2])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = losses.discriminator_loss(x, x, "authors_code")
    assert abs(float(tape.gradient(loss, x)[0, 0])) < 1e-12
    # the equation form at d = 0 is ln 2, and differs from the authors' form elsewhere
    assert float(losses.source_bce(d[:1], 1)[0, 0]) == pytest.approx(np.log(2), rel=1e-6)
    assert float(losses.source_bce(d[2:], 1)[0, 0]) == pytest.approx(np.log1p(np.exp(-3.0)), rel=1e-5)


def test_classifier_penalty_uses_the_chosen_form():
    y = np.array([1, 2], np.int32)
    z = np.zeros((2, 10), np.float32)
    d = np.array([[0.0], [0.0]], np.float32)
    eq = losses.gandef_classifier_loss(y, z, z, d, d, gamma=2.0)
    ac = losses.gandef_classifier_loss(y, z, z, d, d, gamma=2.0, form="authors_code")
    ce = np.log(10)
    assert float(eq) == pytest.approx(ce - 2 * np.log(2), rel=1e-5)
    assert float(ac) == pytest.approx(ce - 2 * 0.474077, rel=1e-5)
    with pytest.raises(ValueError, match="form"):
        losses.source_bce(d, 1, "other")


def test_gandef_loss_form_is_in_the_config_and_the_deviations():
    from gandef_tf.config import deviations

    cfg = get_config("quick", "mnist", "gandef", gandef_loss="authors_code")
    assert cfg.to_dict()["gandef_loss"] == "authors_code"
    paper = get_config("paper", "mnist", "gandef").gandef_loss
    other = "equation" if paper == "authors_code" else "authors_code"
    cfg = get_config("quick", "mnist", "gandef", gandef_loss=other)
    assert any(d.startswith(f"gandef_loss='{other}'") for d in deviations(cfg))
    # a method without a discriminator never lists it
    assert not any("gandef_loss" in d for d in deviations(
        get_config("quick", "mnist", "mix_pgd", gandef_loss=other)))


# ---------------------------------------------------------------- data

def test_validation_hold_out_is_disjoint_seeded_and_sized(monkeypatch):
    x = np.arange(100, dtype=np.float32).reshape(100, 1, 1, 1)
    y = np.arange(100, dtype=np.int32) % 10
    monkeypatch.setattr(training.data, "load", lambda *a, **k: ((x, y), (x[:5], y[:5])))
    cfg = get_config("smoke", "mnist", "vanilla", n_val=20)
    (xt, _), _ = training.load_data(cfg)
    xv, _ = training.load_validation(cfg)
    assert len(xv) == 20 and len(xt) == 80
    assert not set(xv.ravel()) & set(xt.ravel())
    np.testing.assert_array_equal(training.load_validation(cfg)[0], xv)  # seeded
    other = training.load_validation(dataclasses.replace(cfg, data_seed=1))[0]
    assert not np.array_equal(other, xv)
    with pytest.raises(Exception, match="no validation"):
        training.load_validation(dataclasses.replace(cfg, n_val=0))


def test_augmentation_crops_and_flips_each_image_of_a_batch_on_its_own():
    x = np.zeros((64, 32, 32, 3), np.float32)
    x[:, 10, 12, :] = 1.0  # one bright pixel: where it lands tells the offset and flip
    y = np.zeros(64, np.int32)
    ds = training._stream(x, y, batch=64, seed=0, augment=True)
    xb, _ = next(iter(ds))
    where = {tuple(np.argwhere(img[..., 0].numpy() == 1.0).ravel()) for img in xb}
    assert xb.shape == (64, 32, 32, 3)
    assert len(where) > 10  # one offset per batch would give a single position


# ---------------------------------------------------------------- shared pre-training

def test_every_table2_method_shares_one_pretraining_run():
    pre = {m: training.pretrain_config(get_config("quick", "cifar10", m)) for m in TABLE2}
    assert len({p for p in pre.values()}) == 1
    p = pre["gandef"]
    assert (p.method, p.tag, p.pretrain_epochs) == ("vanilla", "pretrain", 0)
    assert p.epochs == get_config("quick", "cifar10", "gandef").pretrain_epochs > 0
    assert training.pretrain_config(get_config("quick", "mnist", "gandef")) is None


def test_a_fresh_run_starts_from_the_pretrained_classifier(fake_data, tiny_models, monkeypatch):
    cfg = get_config("smoke", "mnist", "mix_pgd", pretrain_epochs=1, epochs=1)
    starts = []
    real_fit = keras.Model.fit

    def fit(self, *args, **kwargs):
        starts.append([w.copy() for w in self.classifier.get_weights()])
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    clf, _, _ = training.train(cfg, verbose=0)
    pre = training.pretrain_config(cfg)
    pre_clf = training.load_finished(pre)[0]
    assert len(starts) == 2  # the pre-training, then the method from its weights
    for a, b in zip(starts[1], pre_clf.get_weights()):
        np.testing.assert_array_equal(a, b)
    info = json.loads((runs.results_dir(cfg) / "config.json").read_text())["pretrain"]
    assert info["epochs"] == 1 and info["run"].endswith("vanilla-pretrain/seed0")
    # a second method reuses the finished pre-training: one more fit, not two
    training.train(dataclasses.replace(cfg, method="pure_pgd"), verbose=0)
    assert len(starts) == 3


# ---------------------------------------------------------------- the discriminator's logits

class Recorder(keras.Model):
    """A classifier with dropout that records the `training` flag of each 2B-batch call."""

    def __init__(self, b):
        super().__init__()
        self.b, self.flags = b, []
        self.net = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                                     keras.layers.Dropout(0.5), keras.layers.Dense(10)])

    def call(self, x, training=False):
        if x.shape[0] == 2 * self.b:
            self.flags.append(bool(training))
        return self.net(x, training=training)


@pytest.mark.parametrize("disc_batch", ["fresh", "reuse"])
def test_discriminator_reads_training_mode_logits_in_both_roles(disc_batch):
    b = 8
    cfg = get_config("smoke", "mnist", "gandef", batch_size=b, disc_batch=disc_batch)
    clf = Recorder(b)
    trainer = GanDef(clf, build_discriminator(), cfg)
    trainer.compile(make_optimizer(cfg), keras.optimizers.Adam(cfg.disc_lr))
    x, y = (tf.constant(a) for a in synthetic_mnist(b, 0))
    xd, yd = (tf.constant(a) for a in synthetic_mnist(b, 1))
    trainer.train_step(((x, y), (xd, yd)))
    # fresh: D's own batch and the classifier update; reuse: the update alone
    assert clf.flags == [True] * (2 if disc_batch == "fresh" else 1)


def test_probe_overrides_are_typed_and_bad_ones_refused():
    from experiments.probe import parse_overrides
    from gandef_tf import GandefError

    got = parse_overrides(["lr=3e-4", "gamma=2", "gandef_loss=authors_code", "n_val=5000",
                           "lr_boundaries=", "lr_values=1e-3:1e-4", "augment=true",
                           "n_test=None"])
    assert got == {"lr": 3e-4, "gamma": 2.0, "gandef_loss": "authors_code", "n_val": 5000,
                   "lr_boundaries": (), "lr_values": (1e-3, 1e-4), "augment": True,
                   "n_test": None}
    for bad in ("lr", "nope=1", "epochs=two"):
        with pytest.raises(GandefError):
            parse_overrides([bad])


def test_a_tuning_probe_appends_one_scored_line_per_point(monkeypatch, tmp_path):
    from experiments.probe import run_probe

    data = synthetic_mnist(96, 0)
    monkeypatch.setattr(training.data, "load", lambda *a, **k: (data, synthetic_mnist(16, 1)))
    cfg = get_config("smoke", "mnist", "gandef", n_val=32, batch_size=16)
    out = tmp_path / "probe.jsonl"
    run_probe(cfg, steps=4, points=2, score_n=16, overrides={"n_val": 32}, out=out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4]
    for r in rows:
        v = r["validation"]
        assert r["score_n"] == 16 and r["overrides"] == {"n_val": 32}
        assert 0 <= v["original"] <= 1 and 0 <= v["pgd1"] <= 1 and 0 <= v["comb_pgd1"] <= 1
        assert len(v["d_logit_pct_original"]) == 3 and "d_loss" in v and r["commit"]


def test_a_probe_ramps_the_training_eps_as_its_run_does(monkeypatch, tmp_path):
    """A probe of a config with eps_ramp_steps trains with the ramp (it once did not, and
    its record claimed the ramp all the same)."""
    from experiments import probe
    from gandef_tf.attacks import spec_for

    data = synthetic_mnist(96, 0)
    monkeypatch.setattr(training.data, "load", lambda *a, **k: (data, synthetic_mnist(16, 1)))
    made, start = [], probe.start_trainer
    monkeypatch.setattr(probe, "start_trainer", lambda cfg, *a: made.append(start(cfg, *a)) or made[-1])
    cfg = get_config("smoke", "mnist", "pure_pgd", n_val=32, batch_size=16, eps_ramp_steps=8)
    probe.run_probe(cfg, steps=2, points=1, score_n=16, overrides={}, out=tmp_path / "p.jsonl")
    # the second step (optimizer iteration 1 of 8, in 10 stages) attacks at stage 2 of 10
    full = spec_for(cfg, cfg.train_attack)
    assert made[0].attack_spec.eps == pytest.approx(0.2 * full.eps) and full.eps > 0


def test_a_probe_from_a_finished_run_starts_from_its_weights_and_scores_step_0(
        monkeypatch, tmp_path):
    from experiments import probe
    from gandef_tf import GandefError

    data = synthetic_mnist(96, 0)
    monkeypatch.setattr(training.data, "load", lambda *a, **k: (data, synthetic_mnist(16, 1)))
    monkeypatch.setenv("GANDEF_RUNS_DIR", str(tmp_path / "runs"))
    run = get_config("smoke", "mnist", "pure_pgd", n_val=32, batch_size=16, epochs=1)
    trained = training.train(run, verbose=0)[0]
    folder = runs.run_dir(run)
    made, start = [], probe.start_trainer
    monkeypatch.setattr(probe, "start_trainer", lambda cfg, *a: made.append(start(cfg, *a)) or made[-1])
    cfg = get_config("smoke", "mnist", "pure_pgd", n_val=32, batch_size=16, lr=1e-9)
    out = tmp_path / "p.jsonl"
    probe.run_probe(cfg, steps=1, points=1, score_n=16, overrides={}, out=out, init_from=folder)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1]
    assert rows[0]["init_from"]["run"] == str(folder) and rows[0]["init_from"]["epochs"] == 1
    # lr 1e-9: one step leaves the run's weights in place (a fresh start would not match)
    for a, b in zip(made[0].classifier.get_weights(), trained.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    for other in (dict(n_val=64), dict(n_val=0), dict(data_seed=3)):
        with pytest.raises(GandefError, match="did not hold out"):
            probe.init_weights(get_config("smoke", "mnist", "pure_pgd", **other), folder)
    with pytest.raises(GandefError, match="no finished run"):
        probe.init_weights(cfg, tmp_path)
