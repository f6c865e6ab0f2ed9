"""Commit finished runs' models beside their results (float32, SHA-256 in results.json).

    python -m experiments.commit_models --preset=quick --dataset=cifar10 --seed=0
    python -m experiments.commit_models --dataset=cifar10 --methods=gandef --seed=0

Afterwards `git add results/` takes the .keras files with the results, and any attack runs
on a fresh clone against the committed models (gandef_tf.committed), without retraining.
The models must be in $GANDEF_RUNS_DIR and the runs evaluated.
"""

from absl import flags

from experiments import cli
from gandef_tf import GandefError, committed, runs, training

FLAGS = flags.FLAGS
TRAINED = ["vanilla", "pure_pgd", "mix_pgd", "logit_pairing", "gandef"]


def commit(cfg):
    """Copy the finished run's models (float32) into its results folder and record their
    SHA-256 in results.json; returns the record. Needs the model and its results."""
    resdir = runs.results_dir(cfg)
    if not (resdir / "results.json").exists():
        raise GandefError(f"{resdir} holds no results.json: evaluate the run first")
    finished = training.load_finished(cfg, committed=False)
    if finished is None:
        raise GandefError(f"no finished model of this run in {runs.run_dir(cfg)}")
    rec = {}
    for name, model in zip(("classifier", "discriminator"), finished[:2]):
        if model is None:
            continue
        path = resdir / f"{name}.keras"
        tmp = resdir / f"{name}.tmp.keras"
        model.save(tmp)
        tmp.replace(path)
        rec[name] = {"file": path.name, "sha256": committed.sha256(path),
                     "bytes": path.stat().st_size,
                     **{k: v for k, v in runs.provenance().items() if k in ("commit", "date")}}
    res = runs.read_json(resdir / "results.json")
    res[committed.KEY] = rec
    runs.write_json(resdir / "results.json", res)
    return rec


def main(argv):
    for method in FLAGS.methods:
        cfg = cli.config_from_flags(method=method)
        rec = commit(cfg)
        for name, r in rec.items():
            print(f"[{cfg.preset}] {cfg.dataset}/{method}/seed{cfg.seed}: {r['file']} "
                  f"{r['bytes'] / 1e6:.1f} MB sha256 {r['sha256'][:16]}...")


if __name__ == "__main__":
    cli.define_run_flags()
    flags.DEFINE_list("methods", TRAINED, "The methods whose models are committed.")
    cli.run(main)
