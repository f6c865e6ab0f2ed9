"""Evaluate one run on original, FGSM, BIM, PGD-1 and PGD-2 test examples, and (beyond the
paper) under the adaptive attacks pgd_adaptive and cw_merged, and AutoAttack's apgd_ce and
apgd_dlr when asked (IBM ART: pip install -e ".[eval]"); writes
results/<preset>/<dataset>/<method>/seed<k>/results.json.

    python -m experiments.evaluate --dataset=mnist --method=gandef --preset=quick --seed=0
    python -m experiments.evaluate --preset=quick --method=pure_pgd \
        --eval_attacks=fgsm,bim,pgd1,pgd2,pgd_adaptive,cw_merged,apgd_ce,apgd_dlr

Results first: a run whose results hold every attack asked for is reported as it is,
without its model. A run that lacks attacks is extended with them (its model loaded, or
trained when it has neither results nor a model). Retraining over saved results, or work
estimated above 30 minutes on this device, is refused with one line that prices it;
`--train` starts it.

    from experiments.evaluate import evaluate
    res = evaluate(cfg, allow_train=False)   # these decisions, then gandef_tf.evaluate
"""

from experiments import cli, reproduce
from experiments.plan import refusal
from gandef_tf import GandefError, autoattack, plan


def evaluate(cfg, verbose=1, strategy="default", allow_train=False):
    """The command's decisions, then gandef_tf.evaluate.evaluate: a retraining over saved
    results, or work estimated above the limit, is refused with its price unless
    allow_train (--train); a committed shared pre-training whose model is not here is
    reproduced before a run is trained from it."""
    st = plan.status(cfg)
    why_not = refusal([st], allow_train)  # before anything is made
    if why_not:
        raise GandefError(why_not)
    if st.work in ("train", "retrain"):
        reproduce.pretraining(cfg, verbose)
    # TensorFlow is imported once work starts: bad input and refusals answer in a second
    import gandef_tf.evaluate

    return gandef_tf.evaluate.evaluate(cfg, verbose, strategy, retrain=allow_train)


def summary(cfg, res):
    """The lines printed after an evaluation: accuracies, worst case, masking flags."""
    names = ["original"] + list(cfg.eval_attacks)
    names += [k for k in res["accuracy"] if k not in names]  # attacks saved earlier
    head = f"[{cfg.preset}] {cfg.dataset}/{cfg.method}/seed{cfg.seed}"
    lines = [f"{head} (n_test={res['n_test']}): "
             + "  ".join(f"{k} {100 * res['accuracy'][k]:.2f}%" for k in names)]
    if "comb" in res:
        lines.append(f"[{cfg.preset}] GanDef-Comb (threshold {res['comb']['threshold']}): "
                     + "  ".join(f"{k} {100 * res['comb']['accuracy'][k]:.2f}%" for k in names))
    rob = res.get("robustness", {})
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"
    if "worst_case" in rob:
        worst = f"worst case over all attacks per example: {pct(rob['worst_case'])}"
        if "comb_worst_case" in rob:
            worst += f" (GanDef-Comb {pct(rob['comb_worst_case'])})"
        lines.append(f"[{cfg.preset}] {worst}")
    if "adaptive" in res and res["adaptive"].get("beta") is not None:
        grid = ", ".join(f"{b}: {100 * v['comb_accuracy']:.1f}%"
                         for b, v in res["adaptive"].get("search", {}).items())
        lines.append(f"[{cfg.preset}] pgd_adaptive beta {res['adaptive']['beta']:g} "
                     f"(GanDef-Comb accuracy on the search subset, by beta: {grid})")
    for name, n in res.get("subset", {}).get("attacks", {}).items():
        se = res.get("standard_error", {}).get(name)
        lines.append(f"[{cfg.preset}] {name}: on a seeded subset of {n} of {res['n_test']} test "
                     "images" + (f", standard error {100 * se:.2f} points" if se is not None else ""))
    for name, kept in res.get("candidates_kept", {}).items():
        lines.append(f"[{cfg.preset}] {name}, candidate kept per example: "
                     + ", ".join(f"{c} {k}" for c, k in kept.items()))
    for flag in rob.get("masking_flags", []):
        lines.append(f"[{cfg.preset}] possible gradient masking: {flag}")
    if rob and not rob.get("masking_flags"):
        lines.append(f"[{cfg.preset}] gradient-masking check: no flag (no stronger attack left "
                     "the model more accurate than a weaker one)")
    return lines


def main(argv):
    cfg = cli.config_from_flags()
    autoattack.require(cfg.eval_attacks)  # before hours of training, not after
    res = evaluate(cfg, verbose=cli.FLAGS.verbose, strategy=cli.FLAGS.strategy,
                   allow_train=cli.FLAGS.train)
    print("\n".join(summary(cfg, res)))


if __name__ == "__main__":
    cli.define_run_flags()
    cli.run(main)
