"""Train one method (resumes an interrupted run, reuses a finished one).

    python -m experiments.train --dataset=mnist --method=gandef --preset=quick --seed=0

Training estimated above 30 minutes on this device is refused with one line that prices
it; `--train` starts it. A run whose results are saved but whose model is not here is
refused: `experiments.evaluate --train` retrains it and evaluates it afresh.

    from experiments.train import train
    classifier, discriminator, seconds = train(cfg)   # training.train, pre-training reproduced
"""

from experiments import cli, reproduce
from experiments.plan import refusal
from gandef_tf import GandefError, plan


def train(cfg, verbose=1, strategy="default", stop_after=None):
    """gandef_tf.training.train, after reproducing the committed shared pre-training that
    a fresh run of cfg starts from when its model is not here (reproduce.pretraining)."""
    from gandef_tf import training  # TensorFlow, once work starts (experiments.evaluate: why)

    reproduce.pretraining(cfg, verbose)
    return training.train(cfg, verbose=verbose, strategy=strategy, stop_after=stop_after)


def main(argv):
    cfg = cli.config_from_flags()
    st = plan.status(cfg, train_only=True)
    # Over saved results, even with --train: their predictions would then belong to
    # another model; the refusal names evaluate --train, which retrains and re-evaluates.
    why_not = refusal([st], cli.FLAGS.train and st.work != "retrain")
    if why_not:
        raise GandefError(why_not)
    _, _, seconds = train(cfg, verbose=cli.FLAGS.verbose, strategy=cli.FLAGS.strategy)
    print(f"[{cfg.preset}] trained {cfg.dataset}/{cfg.method}/seed{cfg.seed} in {seconds:.0f} s")


if __name__ == "__main__":
    cli.define_run_flags()
    cli.run(main)
