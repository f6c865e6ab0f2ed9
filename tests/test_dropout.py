"""allCNN's `dropout` field (issue 36): Table 4's real dropout, or the same layers inactive
as the authors' code ran them; and the linear ("cyclic") learning-rate schedule."""

import dataclasses

import keras
import numpy as np
import pytest

from gandef_tf import GandefError
from gandef_tf.config import Config, deviations, get_config
from gandef_tf.methods import LinearKnots, build_trainer, make_optimizer
from gandef_tf.models import InactiveDropout, build_classifier, dropout_of, float32_copy

X = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def nets():
    keras.utils.set_random_seed(0)
    return {d: build_classifier("cifar10", dropout=d) for d in ("table4", "authors_code")}


def test_table4_dropout_changes_training_mode_calls(nets):
    clf = nets["table4"]
    assert not np.allclose(clf(X, training=True).numpy(), clf(X, training=True).numpy())


def test_authors_code_dropout_is_inactive_in_training_mode(nets):
    clf = nets["authors_code"]
    a, b = clf(X, training=True).numpy(), clf(X, training=True).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, clf(X, training=False).numpy(), rtol=1e-6, atol=1e-6)


def test_both_dropouts_have_the_same_layers_and_parameters(nets):
    t4, ac = nets["table4"], nets["authors_code"]
    assert t4.count_params() == ac.count_params() == 1_406_794
    assert [l.name for l in t4.layers] == [l.name for l in ac.layers]
    drops = [l for l in ac.layers if isinstance(l, keras.layers.Dropout)]
    assert [type(l) for l in drops] == [InactiveDropout] * 3
    assert [l.rate for l in drops] == pytest.approx([0.2, 0.5, 0.5])
    assert (dropout_of(t4), dropout_of(ac)) == ("table4", "authors_code")


def test_inactive_dropout_survives_save_load_and_float32_copy(nets, tmp_path):
    ac = nets["authors_code"]
    ac.save(tmp_path / "c.keras")
    loaded = keras.models.load_model(tmp_path / "c.keras")
    assert dropout_of(loaded) == "authors_code"
    np.testing.assert_array_equal(loaded(X, training=True).numpy(), ac(X, training=False).numpy())
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        bf = build_classifier("cifar10", dropout="authors_code")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert dropout_of(float32_copy(bf)) == "authors_code"


def test_trainer_builds_the_configs_dropout():
    cfg = get_config("smoke", "cifar10", "vanilla", dropout="authors_code")
    assert dropout_of(build_trainer(cfg).classifier) == "authors_code"
    assert dropout_of(build_trainer(dataclasses.replace(cfg, dropout="table4")).classifier) \
        == "table4"


def test_dropout_is_recorded_as_a_deviation_on_cifar10_only():
    ac = get_config("quick", "cifar10", "pure_pgd", dropout="authors_code")
    assert any(d.startswith("dropout='authors_code' (paper: 'table4')") for d in deviations(ac))
    assert Config.from_dict(ac.to_dict()).dropout == "authors_code"
    mnist = get_config("quick", "mnist", "pure_pgd", dropout="authors_code")
    assert not any(d.startswith("dropout") for d in deviations(mnist))  # LeNet has none
    assert get_config("paper", "cifar10", "gandef").dropout == "table4"


@pytest.mark.parametrize("kwargs, match", [
    (dict(dropout="off"), "dropout must be one of"),
    (dict(lr_schedule="cosine"), "lr_schedule must be one of"),
    (dict(lr_schedule="linear"), "needs lr_boundaries"),
    (dict(lr_boundaries=(20, 10), lr_values=(1, 2, 3)), "must increase"),
])
def test_bad_dropout_or_schedule_is_refused(kwargs, match):
    with pytest.raises(GandefError, match=match):
        Config(preset="smoke", dataset="cifar10", method="vanilla", **kwargs)


def test_linear_knots_make_a_cyclic_lr():
    lr = LinearKnots((40, 100), (0.0, 0.2, 0.0))
    got = [float(lr(s)) for s in (0, 10, 40, 70, 100, 150)]
    assert got == pytest.approx([0.0, 0.05, 0.2, 0.1, 0.0, 0.0], abs=1e-7)


def test_the_linear_schedule_reaches_the_sgd_optimizer():
    cfg = get_config("smoke", "cifar10", "vanilla", optimizer="sgd", lr_schedule="linear",
                     lr_boundaries=(4, 8), lr_values=(0.0, 0.4, 0.1))
    opt = make_optimizer(cfg)
    assert isinstance(opt, keras.optimizers.SGD) and opt.momentum == pytest.approx(0.9)

    def lr_at(optimizer, step):
        optimizer.iterations.assign(step)
        return float(optimizer.learning_rate)

    assert lr_at(opt, 2) == pytest.approx(0.2) and lr_at(opt, 6) == pytest.approx(0.25)
    piecewise = make_optimizer(dataclasses.replace(cfg, lr_schedule="piecewise"))
    assert lr_at(piecewise, 6) == pytest.approx(0.4)  # held, not interpolated
