"""Train one method (resumes an interrupted run, reuses a finished one).

    python -m experiments.train --dataset=mnist --method=gandef --preset=quick --seed=0
"""

from absl import app

from experiments import cli
from gandef_tf.training import train


def main(argv):
    cfg = cli.config_from_flags()
    _, _, seconds = train(cfg, verbose=cli.FLAGS.verbose, strategy=cli.FLAGS.strategy)
    print(f"[{cfg.preset}] trained {cfg.dataset}/{cfg.method}/seed{cfg.seed} in {seconds:.0f} s")


if __name__ == "__main__":
    cli.define_run_flags()
    app.run(cli.guarded(main))
