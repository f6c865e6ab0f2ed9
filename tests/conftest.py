"""Shared fixtures: every test writes runs/ and results/ under its own tmp_path, and
training-based tests get a small synthetic, easily learnable MNIST-shaped problem
instead of the real data (so they need neither GANDEF_DATA_DIR nor the network)."""

import contextlib
import os
from pathlib import Path

# Before TensorFlow starts: the commands' oneDNN setting (experiments/__init__.py) for this
# process too, or a run trained by a command here could not be repeated here bit for bit.
import experiments  # noqa: F401, I001
import keras
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test`'s two workers share the cores: one TensorFlow thread each, as two
    # one-thread runs beat two that oversubscribe the cores (subprocesses keep the default)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_dirs(monkeypatch, tmp_path):
    """Runs and results go to tmp_path, never to the repository's runs/ or results/."""
    runs_dir, results_dir = tmp_path / "runs", tmp_path / "results"
    monkeypatch.setenv("GANDEF_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("GANDEF_RESULTS_DIR", str(results_dir))
    monkeypatch.setenv("GANDEF_CACHE_DIR", str(tmp_path / "cache"))
    return runs_dir, results_dir


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def synthetic_mnist(n, seed):
    """n images 28x28x1 in [0.25, 0.7]: uniform noise plus a +0.25 block whose position
    is the class. A LeNet learns it in a few steps, and an eps=0.3 attack breaks it."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 10).astype(np.int32)
    rng.shuffle(y)
    x = rng.uniform(0.25, 0.45, (n, 28, 28, 1)).astype(np.float32)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 5)
        x[i, 2 + 12 * r: 12 + 12 * r, 1 + 5 * col: 6 + 5 * col, 0] += 0.25
    return x, y


def fake_load_data(cfg):
    """Stand-in for gandef_tf.training.load_data: synthetic data of the config's sizes."""
    return (synthetic_mnist(cfg.n_train or 320, 1000 + cfg.data_seed),
            synthetic_mnist(cfg.n_test or 64, 2000 + cfg.data_seed))


def patch_load_data(mp, loader=fake_load_data):
    """Replace the loader used by training and evaluation (mp: a pytest MonkeyPatch)."""
    from gandef_tf import evaluate as evaluate_mod
    from gandef_tf import training

    mp.setattr(training, "load_data", loader)
    mp.setattr(evaluate_mod, "load_data", loader)


@pytest.fixture
def fake_data(monkeypatch):
    """Training and evaluation load synthetic data; returns the configs they asked for."""
    calls = []

    def load(cfg):
        calls.append(cfg)
        return fake_load_data(cfg)

    patch_load_data(monkeypatch, load)
    return calls


@pytest.fixture
def images():
    """A small random batch in [0, 1] with labels, for attacks on untrained networks."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, 8).astype(np.int32)
    return x, y


def tiny_classifier(dropout=0.0, hidden=32, seed=0, policy="float32"):
    """A 2-layer MNIST-shaped classifier that outputs logits (about 25k parameters instead
    of LeNet's 3.3M), for tests of training mechanics: build_trainer(cfg, classifier=...).
    With dropout > 0 its training-mode output is random; seed=None keeps the random state,
    policy=None Keras' global precision policy."""
    from keras import layers

    if policy:
        keras.mixed_precision.set_global_policy(policy)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    x = inputs = keras.Input((28, 28, 1), name="image")
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(hidden, activation="relu", name="fc1")(x)
    if dropout:
        x = layers.Dropout(dropout, name="drop")(x)
    logits = layers.Dense(10, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name="tiny")


def use_tiny_classifier(mp):
    """Training builds tiny_classifier() in place of LeNet (mp: a pytest MonkeyPatch), for
    tests of the pipeline around the network; test_wiring.py pins that build_trainer builds
    the paper's networks."""
    from gandef_tf import methods

    mp.setattr(methods, "build_classifier", lambda dataset, dropout="table4": tiny_classifier(seed=None, policy=None))


@pytest.fixture
def tiny_models(monkeypatch):
    use_tiny_classifier(monkeypatch)


def copy_of(model):
    """A separate model with model's architecture and current weights."""
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    return twin


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]


def changed(before, after):
    """Per-array flags: did the array change at all?"""
    return [not np.array_equal(b, a) for b, a in zip(before, after)]


@contextlib.contextmanager
def module_dirs(base, tiny=False):
    """For module-scoped fixtures (the autouse isolated_dirs is per test): runs and results
    under base, synthetic data (and tiny_classifier() in place of LeNet when tiny); yields
    the MonkeyPatch."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANDEF_RUNS_DIR", str(base / "runs"))
        mp.setenv("GANDEF_RESULTS_DIR", str(base / "results"))
        patch_load_data(mp)
        if tiny:
            use_tiny_classifier(mp)
        yield mp


def train_until_interrupted(cfg):
    """Train cfg, stopped (KeyboardInterrupt) right after epoch 1 is saved; returns cfg."""
    from gandef_tf import training

    original = training.RunCallback.on_epoch_end

    def stop_after_first(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training.RunCallback, "on_epoch_end", stop_after_first)
        with pytest.raises(KeyboardInterrupt):
            training.train(cfg, verbose=0)
    return cfg
