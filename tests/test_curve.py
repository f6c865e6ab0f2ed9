"""Fig. 2's step-wise curve (gandef_tf/curve.py): where it scores, that it leaves training
untouched, and that a resumed run's curve holds no step past its checkpoint."""

import numpy as np
import pytest

from conftest import fake_load_data, synthetic_mnist, train_until_interrupted, weights_of
from gandef_tf import curve, runs, training
from gandef_tf.config import get_config

# The runs train tiny_classifier() (conftest) in place of LeNet: the curve is tested.
pytestmark = pytest.mark.usefixtures("tiny_models")


def tiny(method="mix_pgd", **overrides):
    # 128 images in batches of 32: 4 steps per epoch, a curve point every 2 steps.
    values = dict(n_train=128, n_test=64, batch_size=32, epochs=2, curve_every=2, curve_n=40)
    values.update(overrides)
    return get_config("smoke", "mnist", method, **values)


def test_subset_is_seeded_by_the_data_seed_only():
    test = synthetic_mnist(64, 5)
    a = curve.subset(tiny(), test)
    b = curve.subset(tiny("gandef", seed=3), test)
    np.testing.assert_array_equal(a[0], b[0])  # every method and seed: the same images
    assert len(a[1]) == 40
    c = curve.subset(tiny(data_seed=1), test)
    assert not np.array_equal(a[0], c[0])
    assert len(curve.subset(tiny(curve_n=500), test)[1]) == 64  # all of them if fewer


def test_curve_rows_every_n_steps_score_the_classifier(fake_data):
    cfg = tiny("gandef")
    clf, _, _ = training.train(cfg, verbose=0)
    rows = runs.read_csv(runs.results_dir(cfg) / "curve.csv")
    assert [(int(r["step"]), int(r["examples"]), int(r["epoch"])) for r in rows] == [
        (2, 64, 1), (4, 128, 1), (6, 192, 2), (8, 256, 2)]
    # the last point is the finished classifier's accuracy on the subset, computed apart
    x, y = curve.subset(cfg, fake_load_data(cfg)[1])
    acc = np.mean(np.argmax(clf.predict(x, verbose=0), -1) == y)
    assert float(rows[-1]["test_accuracy"]) == pytest.approx(acc, abs=1e-6)


def test_recording_leaves_training_unchanged(fake_data):
    with_curve, _, _ = training.train(tiny(tag="a"), verbose=0)
    without, _, _ = training.train(tiny(tag="b", curve_every=0), verbose=0)
    for a, b in zip(weights_of(with_curve), weights_of(without)):
        np.testing.assert_array_equal(a, b)
    assert not (runs.results_dir(tiny(tag="b", curve_every=0)) / "curve.csv").exists()


def test_resumed_curve_drops_rows_past_the_checkpoint(fake_data):
    cfg = train_until_interrupted(tiny())
    path = runs.results_dir(cfg) / "curve.csv"
    assert [r["step"] for r in runs.read_csv(path)] == ["2", "4"]
    # a process killed after writing a later row but before its checkpoint
    path.write_text(path.read_text() + "6,192,2,0.999\n")
    training.train(cfg, verbose=0)
    rows = runs.read_csv(path)
    assert [r["step"] for r in rows] == ["2", "4", "6", "8"]
    assert rows[2]["test_accuracy"] != "0.999"


def test_a_resumed_run_keeps_its_curve_spacing(fake_data):
    cfg = train_until_interrupted(tiny())
    with pytest.raises(Exception, match="curve_every"):
        training.train(tiny(curve_every=3), verbose=0)
    assert runs.checkpoint_epoch(runs.run_dir(cfg)) == 1  # nothing destroyed
