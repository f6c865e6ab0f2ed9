"""Evaluate one run on original, FGSM, BIM, PGD-1 and PGD-2 test examples (trains first
if the run is missing); writes results/<preset>/<dataset>/<method>/seed<k>/results.json.

    python -m experiments.evaluate --dataset=mnist --method=gandef --preset=quick --seed=0
"""

from absl import app

from experiments import cli
from gandef_tf.evaluate import evaluate


def main(argv):
    cfg = cli.config_from_flags()
    res = evaluate(cfg, verbose=cli.FLAGS.verbose, strategy=cli.FLAGS.strategy)
    names = ["original"] + list(cfg.eval_attacks)
    line = "  ".join(f"{k} {100 * res['accuracy'][k]:.2f}%" for k in names)
    print(f"[{cfg.preset}] {cfg.dataset}/{cfg.method}/seed{cfg.seed} (n_test={res['n_test']}): {line}")
    if "comb" in res:
        line = "  ".join(f"{k} {100 * res['comb']['accuracy'][k]:.2f}%" for k in names)
        print(f"[{cfg.preset}] GanDef-Comb (threshold {res['comb']['threshold']}): {line}")


if __name__ == "__main__":
    cli.define_run_flags()
    app.run(cli.guarded(main))
