"""Retrain a committed run whose model is not on this machine, and check that the new model
is the one that made the committed results, so that new attacks may extend them.

    python -m experiments.reproduce --preset=quick --dataset=mnist --method=gandef --seed=0 \
        --threads=1 --train
    python -m experiments.evaluate --preset=quick --dataset=mnist --method=gandef --seed=0 \
        --eval_attacks=fgsm,bim,pgd1,pgd2,pgd_adaptive,cw_merged,apgd_ce,apgd_dlr

Models live in $GANDEF_RUNS_DIR, results in git: a fresh clone (or a new machine) has the
results but not the models, so it could only add an attack (APGD, say) by retraining and
re-evaluating everything, which replaces the committed numbers. Training is seeded and, on
one CPU thread, repeatable bit for bit on the same kind of CPU; so this retrains the run
(and first its shared pre-training, if it has one and its model is missing) and checks it
against the committed history (gandef_tf.reproduce says how). Identical:
`experiments.evaluate` then extends the committed results with the attacks they lack
(keeping every committed prediction), and its extension record names the reproduction.
Different: one error line says where, and no evaluation can use that model. The committed
files are never written. An interrupted reproduction resumes from its last epoch, but a
resumed training need not repeat an uninterrupted one bit for bit; if the check then fails,
the next call starts afresh (the folder was moved aside). A committed run that was itself
stopped after epoch k and resumed is repeated by stopping and resuming there too:
automatically where its config.json records `resumed_after` (training records it since
2026-11-27), else by `--stop_after=k`, then the same command without it (the mismatch line
suggests this when the first k epochs agree).
"""

from absl import flags

from experiments import cli
from gandef_tf.reproduce import reproduce

FLAGS = flags.FLAGS


def main(argv):
    cfg = cli.config_from_flags()
    rec = reproduce(cfg, verbose=cli.FLAGS.verbose, allow_train=cli.FLAGS.train,
                    stop_after=FLAGS.stop_after)
    if rec is None:
        print(f"[{cfg.preset}] {cfg.dataset}/{cfg.method}/seed{cfg.seed}: stopped after epoch "
              f"{FLAGS.stop_after} as asked; run again without --stop_after to resume and check")
        return
    print(f"[{cfg.preset}] {cfg.dataset}/{cfg.method}/seed{cfg.seed}: reproduced "
          f"({rec['date']}): history.csv and curve.csv identical to {rec['results']}; "
          "experiments.evaluate now extends its results")


if __name__ == "__main__":
    cli.define_run_flags()
    flags.DEFINE_integer("stop_after", 0, "Stop the retraining after this epoch (0: run it "
                         "through), to repeat a committed run that was stopped and resumed there.")
    cli.run(main)
