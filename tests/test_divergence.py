"""Training that diverges for real: a step whose loss is finite but whose update leaves
non-finite weights (as a too-large learning rate does) is reported as divergence, with the
last good checkpoint kept, instead of failing in the next step's attack on NaN inputs; a
network that trains at chance (a dead one) gets a one-line warning."""

import csv

import numpy as np
import pytest
import tensorflow as tf

from conftest import fake_load_data, train_until_interrupted
from gandef_tf import GandefError, losses, runs, training
from gandef_tf.config import get_config
from gandef_tf.methods import build_trainer

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")


def tiny(method, **overrides):
    # 64 images in batches of 32: two steps an epoch, so a step follows the diverging one.
    return get_config("smoke", "mnist", method, **dict(dict(n_train=64, n_test=32,
                                                            batch_size=32, epochs=2), **overrides))


@tf.custom_gradient
def nan_gradient(t):
    """t itself on the way forward, NaN on the way back."""
    return tf.identity(t), lambda dy: dy * float("nan")


def finite_loss_nan_update(model, coefficient):
    """Stands in for the weight-decay term: adds 0 to the loss (its value stays finite) and
    NaN to every weight's gradient, so the optimizer's step leaves NaN weights."""
    return nan_gradient(0.0 * tf.add_n([tf.reduce_sum(v) for v in model.trainable_variables]))


def history_epochs(cfg):
    with open(runs.results_dir(cfg) / "history.csv", newline="") as f:
        return [r["epoch"] for r in csv.DictReader(f)]


@pytest.fixture
def after_epoch_1(fake_data):
    """A 2-epoch mix_pgd run (its steps attack the classifier) stopped after saving epoch 1."""
    return train_until_interrupted(tiny("mix_pgd"))


def test_nan_weights_after_a_finite_loss_step_are_divergence(after_epoch_1, monkeypatch):
    cfg, rdir = after_epoch_1, runs.run_dir(after_epoch_1)
    before = (rdir / "checkpoint.npz").read_bytes()
    monkeypatch.setattr(losses, "l2_weight_decay", finite_loss_nan_update)
    # Not InvalidArgumentError from batch 2's attack: the step that made the weights NaN.
    with pytest.raises(GandefError, match=r"^training diverged at epoch 2, batch 1 \(non-finite "
                       r"weights after a step with loss = \d[\d.]*\); kept the checkpoint of "
                       rf"epoch 1 in {rdir}$"):
        training.train(cfg, verbose=0)
    assert (rdir / "checkpoint.npz").read_bytes() == before
    assert not (rdir / "train.json").exists() and not (rdir / "classifier.keras").exists()
    assert history_epochs(cfg) == ["1"]
    fresh = build_trainer(cfg)
    assert runs.load_checkpoint(rdir, fresh)[0] == 1
    assert all(np.isfinite(w).all() for w in fresh.classifier.get_weights())


def test_divergence_in_the_first_epoch_says_nothing_was_kept(fake_data, monkeypatch):
    cfg = tiny("pure_pgd")
    monkeypatch.setattr(losses, "l2_weight_decay", finite_loss_nan_update)
    with pytest.raises(GandefError, match=r"^training diverged at epoch 1, batch 1 \(non-finite "
                       r".*\); no epoch had finished, so .* holds no checkpoint$"):
        training.train(cfg, verbose=0)
    assert not (runs.run_dir(cfg) / "checkpoint.npz").exists()


def warnings_of(err):
    return [line for line in err.splitlines() if "warning: training accuracy" in line]


def test_a_dead_network_warns_once(fake_data, monkeypatch, capsys):
    """All-zero weights and no learning: every logit equal, class 0 always predicted, so
    accuracy is class 0's share of the data (about 10%) in both epochs: one warning."""
    original = training.build_trainer

    def dead_trainer(cfg):
        trainer = original(cfg)
        trainer.classifier.set_weights([np.zeros_like(w)
                                        for w in trainer.classifier.get_weights()])
        return trainer

    monkeypatch.setattr(training, "build_trainer", dead_trainer)
    cfg = tiny("vanilla", lr=0.0)  # not even a tie-breaking step
    training.train(cfg, verbose=0)
    share = float(np.mean(fake_load_data(cfg)[0][1] == 0))  # every image is trained on
    assert warnings_of(capsys.readouterr().err) == [
        f"[smoke] warning: training accuracy {share:.1%} sat at chance (10%) for the whole of "
        "epoch 1: the network may have stopped learning (a too-large learning rate does this)"]


def test_a_learning_network_does_not_warn(fake_data, capsys):
    cfg = tiny("vanilla", n_train=320, epochs=1)
    training.train(cfg, verbose=0)
    acc = float(runs.read_csv(runs.results_dir(cfg) / "history.csv")[0]["accuracy"])
    assert acc > training.CHANCE_MARGIN / 10  # the premise: it learned in its first epoch
    assert warnings_of(capsys.readouterr().err) == []
