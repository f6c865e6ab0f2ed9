"""Tests of gandef_tf.data: real files (when GANDEF_DATA_DIR holds them), seeded subsets,
refusal of bad files, the data folder before the cache (the other sources:
test_data_source.py). No test reaches the network: Keras' loaders and pip are replaced by
fakes."""

import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gandef_tf import GandefError, data

SMALL = {"mnist": (60, 10), "cifar10": (50, 10)}  # train, test counts of the fake files
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network and no real cache: Keras and pip fail unless a test says otherwise."""
    def no_keras(name):
        raise RuntimeError("URL fetch failure: network disabled in tests")

    def no_pip(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: network disabled in tests\n")

    monkeypatch.setattr(data, "_keras_load_data", no_keras)
    monkeypatch.setattr(data.subprocess, "run", no_pip)
    monkeypatch.setenv("GANDEF_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def small(monkeypatch):
    for name, counts in SMALL.items():
        monkeypatch.setitem(data.EXPECTED_COUNTS, name, counts)


def fake_arrays(name):
    """Image i has every pixel equal to i and label i % 10, so a subset shows its indices."""
    shape = (28, 28) if name == "mnist" else (32, 32, 3)
    out = {}
    for split, n in zip(("train", "test"), SMALL[name]):
        idx = np.arange(n)
        out["x_" + split] = (idx.reshape((n,) + (1,) * len(shape)) * np.ones(shape)).astype(np.uint8)
        out["y_" + split] = (idx % 10).astype(np.uint8)
    return out


def write_npz(folder, name, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.npz"
    np.savez(path, **arrays)
    return path


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---------------------------------------------------------------- real data files

def real(name):
    folder = os.environ.get("GANDEF_DATA_DIR")
    if not folder or not (Path(folder) / f"{name}.npz").is_file():
        pytest.skip(f"GANDEF_DATA_DIR does not hold {name}.npz (CI points it at shared/data)")
    return data.load(name)


@pytest.fixture(scope="module")
def real_mnist():
    return real("mnist")


@pytest.fixture(scope="module")
def real_cifar():
    return real("cifar10")


def test_real_mnist(real_mnist):
    (x_tr, y_tr), (x_te, y_te) = real_mnist
    assert x_tr.shape == (60000, 28, 28, 1) and x_te.shape == (10000, 28, 28, 1)
    assert x_tr.dtype == x_te.dtype == np.float32
    assert y_tr.shape == (60000,) and y_te.shape == (10000,) and y_tr.dtype == y_te.dtype == np.int32
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0 and x_te.min() == 0.0 and x_te.max() == 1.0
    assert y_te[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_tr).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_te).tolist() == MNIST_TEST_COUNTS
    assert abs(x_tr.mean(dtype=np.float64) - 0.1307) < 1e-3
    assert abs(x_tr.std(dtype=np.float64) - 0.3081) < 1e-3


def test_real_mnist_subset_is_seeded_random_draw(real_mnist):
    (x_full, y_full), (xt_full, yt_full) = real_mnist
    (x, y), (xt, yt) = data.load("mnist", n_train=1000, n_test=300, seed=3)
    rng = np.random.default_rng(3)
    idx, idx_t = rng.permutation(60000)[:1000], rng.permutation(10000)[:300]
    np.testing.assert_array_equal(x, x_full[idx])
    np.testing.assert_array_equal(y, y_full[idx])
    np.testing.assert_array_equal(xt, xt_full[idx_t])
    np.testing.assert_array_equal(yt, yt_full[idx_t])
    assert not np.array_equal(yt, yt_full[:300])


def test_real_cifar10(real_cifar):
    (x_tr, y_tr), (x_te, y_te) = real_cifar
    assert x_tr.shape == (50000, 32, 32, 3) and x_te.shape == (10000, 32, 32, 3)
    assert x_tr.dtype == x_te.dtype == np.float32
    assert y_tr.shape == (50000,) and y_te.shape == (10000,) and y_tr.dtype == y_te.dtype == np.int32
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0
    assert np.bincount(y_tr).tolist() == [5000] * 10
    assert np.bincount(y_te).tolist() == [1000] * 10
    means = x_tr.mean(axis=(0, 1, 2), dtype=np.float64) * 255
    np.testing.assert_allclose(means, [125.31, 122.95, 113.87], atol=0.01)


# ---------------------------------------------------------------- arguments and subsets

def test_unknown_name_names_the_choices():
    with pytest.raises(GandefError, match="mnist, cifar10"):
        data.load("svhn")


@pytest.mark.parametrize("kwargs", [dict(n_train=0), dict(n_test=-1), dict(n_train=61),
                                    dict(n_test=11), dict(n_train=2.5), dict(n_test=True),
                                    dict(seed=-1)])
def test_bad_sizes_and_seed_refused(small, monkeypatch, tmp_path, kwargs):
    write_npz(tmp_path / "d", "mnist", fake_arrays("mnist"))
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "d"))
    with pytest.raises(GandefError):
        data.load("mnist", **kwargs)


@pytest.mark.parametrize("name", data.DATASETS)
def test_full_load_converts_exactly(small, monkeypatch, tmp_path, name):
    arrays = fake_arrays(name)
    write_npz(tmp_path / "d", name, arrays)
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "d"))
    (x, y), (xt, yt) = data.load(name)
    expected = arrays["x_train"].astype(np.float32) / 255
    if name == "mnist":
        expected = expected[..., None]
    np.testing.assert_array_equal(x, expected)
    assert x.dtype == np.float32 and y.dtype == yt.dtype == np.int32
    np.testing.assert_array_equal(y, arrays["y_train"])
    assert xt.shape[0] == SMALL[name][1]


def test_mnist_with_channel_axis_accepted(small, monkeypatch, tmp_path):
    arrays = fake_arrays("mnist")
    arrays["x_train"] = arrays["x_train"][..., None]
    write_npz(tmp_path / "d", "mnist", arrays)
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "d"))
    assert data.load("mnist")[0][0].shape == (60, 28, 28, 1)


def test_subsets_seeded_without_replacement(small, monkeypatch, tmp_path):
    write_npz(tmp_path / "d", "mnist", fake_arrays("mnist"))
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "d"))

    def indices(**kwargs):
        (x, y), (xt, yt) = data.load("mnist", **kwargs)
        i, it = np.round(x[:, 0, 0, 0] * 255).astype(int), np.round(xt[:, 0, 0, 0] * 255).astype(int)
        np.testing.assert_array_equal(y, i % 10)  # images and labels stay paired
        np.testing.assert_array_equal(yt, it % 10)
        return i.tolist(), it.tolist()

    a, at = indices(n_train=20, n_test=5, seed=0)
    assert len(a) == len(set(a)) == 20 and len(at) == len(set(at)) == 5
    assert (a, at) == indices(n_train=20, n_test=5, seed=0)
    b, bt = indices(n_train=20, n_test=5, seed=1)
    assert a != b and at != bt
    assert a != list(range(20)) and at != list(range(5))
    assert indices(n_test=5, seed=0)[1] == at  # test draw does not depend on n_train
    assert sorted(indices(n_train=60, seed=0)[0]) == list(range(60))


# ---------------------------------------------------------------- refusal of bad files

def corrupt(path):
    path.write_bytes(np.random.default_rng(0).bytes(5000))


BAD = {
    "corrupt": (lambda a, p: corrupt(p), "not a readable .npz"),
    "missing": (lambda a, p: (a.pop("y_test"), np.savez(p, **a)), "missing array.*y_test"),
    "dtype": (lambda a, p: np.savez(p, **{**a, "x_train": a["x_train"].astype(np.float32)}),
              "x_train has dtype float32"),
    "shape": (lambda a, p: np.savez(p, **{**a, "x_test": a["x_test"][:, :, :27]}),
              r"x_test has shape \(10, 28, 27\)"),
    "count": (lambda a, p: np.savez(p, **{**a, "x_train": a["x_train"][:59], "y_train": a["y_train"][:59]}),
              "x_train has 59 images"),
    "label_range": (lambda a, p: np.savez(p, **{**a, "y_train": np.where(a["y_train"] == 3, 10, a["y_train"])}),
                    "labels outside 0..9"),
    "label_negative": (lambda a, p: np.savez(p, **{**a, "y_test": a["y_test"].astype(np.int8) - 1}),
                       "labels outside 0..9"),
    "label_float": (lambda a, p: np.savez(p, **{**a, "y_test": a["y_test"].astype(np.float32)}),
                    "y_test has dtype float32"),
    "label_length": (lambda a, p: np.savez(p, **{**a, "y_train": a["y_train"][:50]}), "50 labels for 60"),
    "label_2d": (lambda a, p: np.savez(p, **{**a, "y_train": np.stack([a["y_train"]] * 2, 1)}),
                 r"y_train has shape \(60, 2\)"),
}


@pytest.mark.parametrize("where", ["data_dir", "cache"])
@pytest.mark.parametrize("problem", sorted(BAD))
def test_bad_file_refused_by_name_and_kept(small, monkeypatch, tmp_path, where, problem):
    folder = tmp_path / ("d" if where == "data_dir" else "cache")
    path = write_npz(folder, "mnist", {})
    break_it, message = BAD[problem]
    break_it(fake_arrays("mnist"), path)
    if where == "data_dir":
        monkeypatch.setenv("GANDEF_DATA_DIR", str(folder))
        write_npz(tmp_path / "cache", "mnist", fake_arrays("mnist"))  # a good cache must not hide it
    else:
        monkeypatch.delenv("GANDEF_DATA_DIR", raising=False)
    before = sha(path)
    monkeypatch.setattr(data, "_keras_load_data", lambda name: pytest.fail("fell through to Keras"))
    with pytest.raises(GandefError, match=message) as err:
        data.load("mnist")
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.is_file() and sha(path) == before


def test_data_dir_before_cache(small, monkeypatch, tmp_path):
    ones, twos = fake_arrays("mnist"), fake_arrays("mnist")
    ones["y_test"][:] = 1
    twos["y_test"][:] = 2
    write_npz(tmp_path / "d", "mnist", ones)
    write_npz(tmp_path / "cache", "mnist", twos)
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "d"))
    assert set(data.load("mnist")[1][1].tolist()) == {1}
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "elsewhere"))
    assert set(data.load("mnist")[1][1].tolist()) == {2}


# ---------------------------------------------------------------- Keras route

def test_keras_route_flattens_cifar_labels(small, monkeypatch):
    monkeypatch.delenv("GANDEF_DATA_DIR", raising=False)
    a = fake_arrays("cifar10")
    fake = ((a["x_train"], a["y_train"][:, None]), (a["x_test"], a["y_test"][:, None]))
    monkeypatch.setattr(data, "_keras_load_data", lambda name: fake if name == "cifar10" else None)
    (x, y), (xt, yt) = data.load("cifar10")
    assert y.shape == (50,) and yt.shape == (10,) and y.dtype == np.int32
    np.testing.assert_array_equal(y, a["y_train"])
    np.testing.assert_array_equal(xt, a["x_test"].astype(np.float32) / 255)
