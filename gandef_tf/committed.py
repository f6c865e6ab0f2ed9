"""Models committed beside their results, so that any attack runs on a fresh clone.

    import gandef_tf.models, keras  # registers the layers a committed allCNN may hold
    clf = keras.models.load_model("results/quick/cifar10/pure_pgd/seed0/classifier.keras")

A finished run's models live in $GANDEF_RUNS_DIR, which a fresh clone lacks.
`python -m experiments.commit_models` copies them, in float32 whatever precision trained
them, into the run's results folder and records each file's SHA-256 and size in its
results.json (`committed_models`).
`load(cfg)` is what evaluation uses when the run folder holds no model: it refuses a file
whose SHA-256 is not the recorded one (a changed or truncated model cannot make numbers
that look like the committed run's).
"""

import hashlib

from gandef_tf import GandefError, runs

KEY = "committed_models"


def names(cfg):
    return ["classifier", "discriminator"] if cfg.is_gandef else ["classifier"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recorded(cfg):
    """{name: {"file", "sha256", "bytes", "commit", "date"}} of cfg's committed models
    ({} when none): those results.json records whose files are all present."""
    path = runs.results_dir(cfg) / "results.json"
    rec = runs.read_json(path).get(KEY, {}) if path.exists() else {}
    ok = set(rec) == set(names(cfg)) and all(
        (runs.results_dir(cfg) / r["file"]).exists() for r in rec.values())
    return rec if ok else {}


def load(cfg):
    """(classifier, discriminator or None, train_seconds) from the committed models; None
    when cfg has none. A file whose SHA-256 differs from its record is refused."""
    import keras

    from gandef_tf import models

    rec = recorded(cfg)
    if not rec:
        return None
    loaded = {}
    for name, r in rec.items():
        path = runs.results_dir(cfg) / r["file"]
        if sha256(path) != r["sha256"]:
            raise GandefError(f"{path} is not the committed model: its SHA-256 differs from "
                              f"the one in results.json; restore it (git checkout -- {path})")
        try:
            loaded[name] = models.float32_copy(keras.models.load_model(path))
        except Exception as e:
            raise GandefError(f"cannot load the committed model {path} ({e})") from None
    seconds = runs.read_json(runs.results_dir(cfg) / "results.json").get("train_seconds", 0.0)
    return loaded["classifier"], loaded.get("discriminator"), seconds


def record(cfg):
    """What an extension of cfg's results records of the model it attacked, when that was
    the committed one ({} otherwise)."""
    if (runs.run_dir(cfg) / "train.json").exists():
        return {}
    rec = recorded(cfg)
    return {"model": {"committed": {n: r["sha256"] for n, r in rec.items()}}} if rec else {}

