"""Run and results folders, provenance, atomic writes and checkpoints.

    from gandef_tf import runs
    rdir = runs.prepare(cfg)                  # refuses a folder made with another config
    epoch = runs.load_checkpoint(rdir, trainer)
    runs.save_checkpoint(rdir, trainer, epoch, elapsed)

Heavy state (checkpoints, .keras models) lives in runs/<preset>/<dataset>/<method>/seed<k>/
($GANDEF_RUNS_DIR; <method>-<tag> for a tagged variant); the small files that tables
and figures are made from live in results/<same>/ ($GANDEF_RESULTS_DIR) and are meant to
be committed.
"""

import contextlib
import csv
import datetime
import io
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np

try:
    import fcntl
except ImportError:  # no advisory locks (Windows): runs are not held
    fcntl = None

from gandef_tf import GandefError
from gandef_tf.config import EVAL_ONLY_FIELDS, Config
from gandef_tf.host import (commit, cpu_summary, device, intra_op_threads, onednn,  # noqa: F401
                           threads)


def method_folder(method, tag=""):
    """A variant (cfg.tag, e.g. a gamma sweep's point) never shares the method's folders."""
    return f"{method}-{tag}" if tag else method


def _sub(cfg):
    return Path(cfg.preset) / cfg.dataset / method_folder(cfg.method, cfg.tag) / f"seed{cfg.seed}"


def run_dir(cfg):
    return Path(os.environ.get("GANDEF_RUNS_DIR", "runs")) / _sub(cfg)


def results_dir(cfg):
    return Path(os.environ.get("GANDEF_RESULTS_DIR", "results")) / _sub(cfg)


_HELD = set()  # run folders this process holds (holding is re-entrant)


@contextlib.contextmanager
def hold(folder, wait=False):
    """Hold a run folder while training or evaluating it (re-entrant within a process): a
    second process gets one error line, or with wait (a shared pre-training) waits,
    instead of both writing one checkpoint and one set of results."""
    key = str(Path(folder).resolve())
    if key in _HELD or fcntl is None:
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    with open(Path(folder) / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            who = f.read().strip() or "another process"
            if not wait:
                raise GandefError(f"{folder} is being trained or evaluated by {who}; wait "
                                  "for it to end, or stop it") from None
            print(f"waiting for {who}, which holds {folder}", flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        f.truncate(0)
        f.write(f"process {os.getpid()} on {platform.node()}")
        f.flush()
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)


def atomic_write(path, data):
    """Write bytes or text so that a reader sees the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path, obj):
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_npz(path, **arrays):
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write(path, buf.getvalue())


def read_csv(path):
    """A results CSV (history.csv, curve.csv) as a list of dicts; [] when it is missing."""
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def write_csv(path, fields, rows):
    """rows (dicts) as a results CSV, atomically; the reader is read_csv."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fields, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(path, buf.getvalue())


def read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise GandefError(f"cannot read {path}: {e}") from None


def provenance():
    import cleverhans
    import keras
    import tensorflow as tf

    return {
        "commit": commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cleverhans": getattr(cleverhans, "__version__", "4.0.0"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": device(),
        "threads": threads(),
        "onednn": onednn(),
    }


def same_run(a, b):
    """Two configs train and attack the same way (scoring-only fields may differ)."""
    strip = lambda d: {k: v for k, v in d.items() if k not in EVAL_ONLY_FIELDS}
    return strip(a.to_dict()) == strip(b.to_dict())


def prepare(cfg):
    """Create the run folder, or check that the one there was made with this config."""
    rdir, path = run_dir(cfg), run_dir(cfg) / "config.json"
    if path.exists():
        stored = read_json(path).get("config")
        try:
            stored_cfg = Config.from_dict(stored or {})
        except (GandefError, TypeError) as e:
            raise GandefError(f"{path} holds an unreadable config ({e}); move the folder away") from None
        if not same_run(stored_cfg, cfg):
            diff = sorted(k for k, v in cfg.to_dict().items()
                          if stored_cfg.to_dict().get(k) != v and k not in EVAL_ONLY_FIELDS)
            raise GandefError(f"{rdir} was made with another config (differs in {', '.join(diff)}); "
                              "use another --seed, set GANDEF_RUNS_DIR, or move that folder away")
        return rdir
    write_json(path, {"config": cfg.to_dict(), **provenance()})
    return rdir


def reproduced(cfg, train_seconds=None):
    """{"model": ...} naming the reproduction (experiments.reproduce) whose model extends
    a committed run, with its training time when given, else {} (the model that made the
    run)."""
    path = run_dir(cfg) / "reproduced.json"
    if not path.exists():
        return {}
    rec = read_json(path)
    model = {"reproduced": True, **{k: rec[k] for k in ("date", "commit", "device") if k in rec}}
    if train_seconds is not None:
        model["train_seconds"] = round(train_seconds, 1)
    return {"model": model}


def save_checkpoint(rdir, trainer, epoch, elapsed, batch=0):
    """`epoch` finished epochs, then `batch` batches of the next (a mid-epoch save)."""
    arrays = {"epoch": np.int64(epoch), "elapsed": np.float64(elapsed), "batch": np.int64(batch)}
    for prefix, variables in _state(trainer).items():
        for i, v in enumerate(variables):
            arrays[f"{prefix}/{i}"] = v.numpy()
    save_npz(Path(rdir) / "checkpoint.npz", **arrays)


def checkpoint_epoch(rdir, key="epoch"):
    """The last finished epoch saved in rdir's checkpoint (0 when there is none); with
    key="batch", the batches of the next epoch it holds too (0 for an end-of-epoch save)."""
    path = Path(rdir) / "checkpoint.npz"
    if not path.exists():
        return 0
    try:
        with np.load(path, allow_pickle=False) as z:
            # checkpoints saved before mid-epoch saves existed hold no batch
            return 0 if key == "batch" and key not in z.files else int(z[key])
    except Exception as e:
        raise GandefError(f"corrupt checkpoint {path} ({type(e).__name__}: {e}); "
                          "delete it to retrain from scratch") from None


def load_checkpoint(rdir, trainer):
    """(epoch, elapsed seconds) restored into trainer; (0, 0.0) when none was saved."""
    path = Path(rdir) / "checkpoint.npz"
    if not path.exists():
        return 0, 0.0
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for prefix, variables in _state(trainer).items():
            if sum(k.startswith(prefix + "/") for k in arrays) != len(variables):
                raise ValueError(f"{prefix} holds a different number of variables")
            for i, v in enumerate(variables):
                v.assign(arrays[f"{prefix}/{i}"])
        return int(arrays["epoch"]), float(arrays["elapsed"])
    except Exception as e:  # any failure to read or fit is a corrupt checkpoint
        raise GandefError(f"corrupt checkpoint {path} ({type(e).__name__}: {e}); "
                          "delete it to retrain from scratch") from None


def _state(trainer):
    """Every variable a resume needs, optimizers built first so their slots exist."""
    pairs = [("classifier", trainer.classifier, trainer.optimizer)]
    if hasattr(trainer, "discriminator"):
        pairs.append(("discriminator", trainer.discriminator, trainer.d_optimizer))
    state = {}
    for name, model, optimizer in pairs:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        state[name] = model.weights
        state[name + "_optimizer"] = optimizer.variables
    return state
