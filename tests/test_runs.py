"""Run folders, atomic writes, checkpoints, and the training loop's resume /
reuse / refusal behaviour (interruptions, corrupt checkpoints, NaN losses)."""

import csv
import json
import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import synthetic_mnist, train_until_interrupted, weights_of
from gandef_tf import GandefError, losses, runs, training
from gandef_tf.config import Config, get_config
from gandef_tf.methods import build_trainer

# The runs and trainers here use tiny_classifier() (conftest) in place of LeNet: checkpoints
# and the training loop are tested, not the network.
pytestmark = pytest.mark.usefixtures("tiny_models")

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")


def tiny(method="vanilla", **overrides):
    values = dict(n_train=64, n_test=32, batch_size=32, epochs=2)
    values.update(overrides)
    return get_config("smoke", "mnist", method, **values)


def history(cfg):
    with open(runs.results_dir(cfg) / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def checkpoint(cfg):
    with np.load(runs.run_dir(cfg) / "checkpoint.npz") as z:
        return {k: z[k] for k in z.files}


def classifier_arrays(ckpt):
    n = sum(k.startswith("classifier/") for k in ckpt)
    return [ckpt[f"classifier/{i}"] for i in range(n)]


# ---------------------------------------------------------------- files

def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "f.json"
    runs.atomic_write(path, "one")
    runs.atomic_write(path, b"two")
    assert path.read_text() == "two"
    assert os.listdir(path.parent) == ["f.json"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.txt"
    runs.atomic_write(path, "old")
    with pytest.raises(TypeError):
        runs.atomic_write(path, 12345)  # not bytes or str: the write fails midway
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_run_and_results_dirs_follow_the_environment(isolated_dirs):
    cfg = tiny(seed=4)
    assert runs.run_dir(cfg) == isolated_dirs[0] / "smoke" / "mnist" / "vanilla" / "seed4"
    assert runs.results_dir(cfg) == isolated_dirs[1] / "smoke" / "mnist" / "vanilla" / "seed4"


def test_prepare_writes_config_and_refuses_another(isolated_dirs):
    cfg = tiny()
    rdir = runs.prepare(cfg)
    stored = json.loads((rdir / "config.json").read_text())
    assert Config.from_dict(stored["config"]) == cfg
    assert {"commit", "tensorflow", "keras", "device", "date"} <= set(stored)
    before = (rdir / "config.json").read_bytes()
    assert runs.prepare(cfg) == rdir
    assert runs.prepare(tiny(threshold=0.2, eval_batch_size=7)) == rdir  # scoring-only fields
    with pytest.raises(GandefError, match=r"another config \(differs in epochs\)"):
        runs.prepare(tiny(epochs=3))
    assert (rdir / "config.json").read_bytes() == before


def test_cpu_summary_names_the_model_and_vector_unit():
    info = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
            "flags\t\t: fpu sse2 avx avx2 avx512f avx512bw\n\nprocessor\t: 1\n")
    assert runs.cpu_summary(info) == "Intel(R) Xeon(R) Processor, AVX-512"
    assert runs.cpu_summary("model name : Some CPU\nflags : sse2 avx avx2\n") == "Some CPU, AVX2"
    assert runs.cpu_summary("") == ""
    amx = "model name : X\nflags : avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert runs.cpu_summary(amx) == "X, AVX-512, AMX-BF16"
    assert runs.cpu_summary("model name : Y\nflags : avx512f avx512_bf16\n") == "Y, AVX-512, AVX512-BF16"
    if not tf.config.list_physical_devices("GPU"):
        assert runs.device().startswith("CPU (") and f"{os.cpu_count()} cores" in runs.device()


def test_prepare_refuses_an_unreadable_config(isolated_dirs):
    cfg = tiny()
    path = runs.run_dir(cfg) / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(GandefError, match="cannot read"):
        runs.prepare(cfg)
    path.write_text(json.dumps({"config": {"preset": "smoke"}}))
    with pytest.raises(GandefError, match="unreadable config"):
        runs.prepare(cfg)
    assert path.read_text() == json.dumps({"config": {"preset": "smoke"}})


# ---------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip_restores_weights_and_optimizer(tmp_path):
    cfg = tiny("gandef", batch_size=8)
    keras.utils.set_random_seed(1)
    a = build_trainer(cfg)
    x, y = (tf.constant(t) for t in synthetic_mnist(8, 0))
    a.train_step(((x, y), (x, y)))
    runs.save_checkpoint(tmp_path, a, 3, 12.5)
    keras.utils.set_random_seed(2)
    b = build_trainer(cfg)
    assert runs.load_checkpoint(tmp_path, b) == (3, 12.5)
    for ma, mb in ((a.classifier, b.classifier), (a.discriminator, b.discriminator)):
        for wa, wb in zip(weights_of(ma), weights_of(mb)):
            np.testing.assert_array_equal(wa, wb)
    for opt_a, opt_b in ((a.optimizer, b.optimizer), (a.d_optimizer, b.d_optimizer)):
        assert int(opt_b.iterations.numpy()) == 1
        for va, vb in zip(opt_a.variables, opt_b.variables):
            np.testing.assert_array_equal(va.numpy(), vb.numpy())


def test_no_checkpoint_means_epoch_zero(tmp_path):
    assert runs.load_checkpoint(tmp_path, build_trainer(tiny())) == (0, 0.0)


def test_checkpoint_of_another_method_is_corrupt(tmp_path):
    runs.save_checkpoint(tmp_path, build_trainer(tiny()), 1, 1.0)
    with pytest.raises(GandefError, match="corrupt checkpoint"):
        runs.load_checkpoint(tmp_path, build_trainer(tiny("gandef")))


# ---------------------------------------------------------------- training loop

@pytest.fixture
def interrupted(fake_data, monkeypatch):
    """A 2-epoch run stopped (KeyboardInterrupt) right after saving epoch 1."""
    return train_until_interrupted(tiny())


@pytest.fixture
def fit_spy(monkeypatch):
    calls = []
    original = keras.Model.fit

    def spy(self, *args, **kwargs):
        calls.append(dict(initial_epoch=kwargs.get("initial_epoch", 0), epochs=kwargs.get("epochs"),
                          weights=weights_of(self.classifier),
                          iterations=int(self.optimizer.iterations.numpy())))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    return calls


def test_interrupted_run_resumes_then_is_reused(interrupted, fit_spy, fake_data, capsys):
    cfg = interrupted
    rdir = runs.run_dir(cfg)
    ckpt = checkpoint(cfg)
    assert int(ckpt["epoch"]) == 1
    first_row = history(cfg)
    assert [r["epoch"] for r in first_row] == ["1"]
    assert not (rdir / "train.json").exists() and not (rdir / "classifier.keras").exists()

    capsys.readouterr()
    clf, disc, seconds = training.train(cfg, verbose=0)
    assert "resuming" in capsys.readouterr().out
    assert len(fit_spy) == 1
    assert (fit_spy[0]["initial_epoch"], fit_spy[0]["epochs"]) == (1, 2)
    for w_resumed, w_saved in zip(fit_spy[0]["weights"], classifier_arrays(ckpt)):
        np.testing.assert_array_equal(w_resumed, w_saved)
    assert fit_spy[0]["iterations"] == 2  # 64 examples / 32 per step, restored with Adam's state

    rows = history(cfg)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert rows[0] == first_row[0]
    assert all(0 <= float(r["test_accuracy"]) <= 1 for r in rows)
    assert int(checkpoint(cfg)["epoch"]) == 2
    assert json.loads((rdir / "train.json").read_text())["epochs"] == 2
    assert disc is None and seconds > 0
    assert fake_data[-1] == cfg  # trained on the config's data
    saved = classifier_arrays(checkpoint(cfg))
    for a, b in zip(clf.get_weights(), saved):
        np.testing.assert_array_equal(a, b)
    assert not any(np.array_equal(a, b) for a, b in zip(saved, classifier_arrays(ckpt)))

    # a finished run is reused: no second fit, the saved models come back
    clf2, disc2, seconds2 = training.train(cfg, verbose=0)
    assert len(fit_spy) == 1 and disc2 is None and seconds2 == pytest.approx(seconds)
    for a, b in zip(clf2.get_weights(), saved):
        np.testing.assert_array_equal(a, b)
    plain = keras.models.load_model(runs.run_dir(cfg) / "classifier.keras")
    for a, b in zip(plain.get_weights(), saved):
        np.testing.assert_array_equal(a, b)


def test_another_config_in_the_run_folder_is_refused(fake_data, fit_spy):
    cfg = tiny()
    runs.prepare(cfg)
    path = runs.run_dir(cfg) / "config.json"
    before = path.read_bytes()
    with pytest.raises(GandefError, match="another config"):
        training.train(tiny(epochs=3), verbose=0)
    assert path.read_bytes() == before and fit_spy == []


def test_corrupt_checkpoint_is_reported_and_kept(fake_data, fit_spy):
    cfg = tiny()
    rdir = runs.prepare(cfg)
    garbage = b"PK\x03\x04 this is not a checkpoint"
    (rdir / "checkpoint.npz").write_bytes(garbage)
    with pytest.raises(GandefError, match="corrupt checkpoint"):
        training.train(cfg, verbose=0)
    assert (rdir / "checkpoint.npz").read_bytes() == garbage
    assert fit_spy == []


def test_nan_loss_stops_with_an_error_and_keeps_the_last_checkpoint(interrupted):
    cfg = interrupted
    path = runs.run_dir(cfg) / "checkpoint.npz"
    before = path.read_bytes()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(losses, "cross_entropy",
                   lambda y, logits: tf.reduce_mean(logits) * float("nan"))
        with pytest.raises(GandefError, match=r"^training diverged at epoch 2, batch 1 \(loss "
                           r"= nan\); kept the checkpoint of epoch 1 in "):
            training.train(cfg, verbose=0)
    assert path.read_bytes() == before
    assert not (runs.run_dir(cfg) / "train.json").exists()
    assert not (runs.run_dir(cfg) / "classifier.keras").exists()
    assert [r["epoch"] for r in history(cfg)] == ["1"]
    fresh = build_trainer(cfg)
    assert runs.load_checkpoint(runs.run_dir(cfg), fresh)[0] == 1
    assert all(np.isfinite(w).all() for w in fresh.classifier.get_weights())


def test_too_few_examples_for_one_batch(fake_data):
    with pytest.raises(GandefError, match="fewer than one batch"):
        training.train(tiny(n_train=16), verbose=0)


def test_commit_is_dirty_for_code_changes_but_not_for_outputs(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    for name in ("lib.py", "results/r.json", "figures/f.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("0")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "x")
    clean = runs.commit.__wrapped__(tmp_path)
    assert len(clean) == 40
    (tmp_path / "results/r.json").write_text("1")
    (tmp_path / "figures/f.md").write_text("1")
    assert runs.commit.__wrapped__(tmp_path) == clean
    (tmp_path / "lib.py").write_text("1")
    assert runs.commit.__wrapped__(tmp_path) == clean + "-dirty"
