"""What a run will cost before it starts: FLOPs from its config, seconds from a measured rate.

    from gandef_tf import estimate
    rate = estimate.device_rate()                      # figures/bench*.json or gpu_proxy/
    s = estimate.train_seconds(cfg, rate) + estimate.eval_seconds(cfg, ["original", "pgd1"], rate)
    print(estimate.duration(s), rate.source)           # '3.2 h', where the rate came from

Costs are counted in forward passes of the classifier (FLOPs of its convolutions and
dense layers per example): an attack iteration is a forward and an input-gradient pass
(2), a training update a forward and a backward pass over inputs and weights (3). The
same count applied to the benchmark's measured training steps (Vanilla, Pure PGD, Mix
PGD, Logit Pairing, GanDef fresh / reused batch) gives a FLOP rate of this device's
training step, and to its measured Table 2 evaluation a rate for attacks; a run's time is
its FLOPs over that rate. The benchmark measures LeNet: allCNN's times are the same
rate applied to allCNN's FLOPs (labelled as FLOP-scaled). No benchmark of this code ran
on a GPU yet: there, the rates are those a PyTorch version of the same steps reached on
an H100 (figures/gpu_proxy/), per network, and `source` says so.
"""

import dataclasses
import functools
import json
import os
from pathlib import Path

from gandef_tf.config import get_config
from gandef_tf.data import EXPECTED_COUNTS

REPO_FIGURES = Path(__file__).resolve().parents[1] / "figures"
# Without any record for a GPU: an assumed sustained rate, named as an assumption.
ASSUMED_GPU_FLOPS = 6e12
# A CPU without a benchmark of its own: the committed CPU benchmark's rate is used and
# named; hosts of one machine kind differed 3x here (docs/performance.md).
LIMIT_S = 30 * 60  # longer work starts only when asked (--train / TRAIN=1)


@dataclasses.dataclass(frozen=True)
class Rate:
    train_flops: float  # FLOP/s of a training step
    eval_flops: float  # FLOP/s of the evaluation attacks
    device: str
    source: str  # where the rates come from, for every message that quotes a time
    # {dataset: (train, eval)} where rates were measured per network (the GPU proxy):
    # on a GPU the small LeNet runs at a fraction of allCNN's rate.
    by_dataset: tuple = ()
    # {dataset: float32 step time / bfloat16 step time}, measured by the benchmark's
    # bf16_vs_fp32_train_step_mix_pgd_<dataset> rows; training in bfloat16 is that much
    # faster (evaluation is float32 always).
    bf16_speedup: tuple = ()

    def train_rate(self, dataset, precision="float32"):
        rate = dict(self.by_dataset).get(dataset, (self.train_flops,))[0]
        if precision == "mixed_bfloat16":
            rate *= dict(self.bf16_speedup).get(dataset, 1.0)
        return rate

    def eval_rate(self, dataset):
        return dict(self.by_dataset).get(dataset, (0, self.eval_flops))[1]


# Multiply-adds x 2 of the classifier's convolutions and dense layers, per example (LeNet,
# allCNN with either dropout value): constants, so that pricing needs no TensorFlow;
# tests/test_bench.py counts them on the built networks.
FORWARD_FLOPS = {"mnist": 27_767_808, "cifar10": 798_920_448}


def forward_flops(dataset):
    return FORWARD_FLOPS[dataset]


def _iters(cfg, name):
    """Forward-pass equivalents of one attack on one example (a restart repeats it)."""
    from gandef_tf.attack_specs import spec_for

    spec = spec_for(cfg, name)
    return 2 * spec.nb_iter * spec.restarts


def step_passes(cfg):
    """Forward-pass equivalents per training example (batch_size of them per step)."""
    if cfg.method == "vanilla":
        return 3
    attack = _iters(cfg, cfg.train_attack)
    if cfg.method == "pure_pgd":
        return attack + 3
    passes = attack + 6  # the update sees the original and the adversarial half
    if cfg.is_gandef and cfg.disc_batch == "fresh":
        passes += cfg.disc_steps * (attack + 2)  # a fresh batch, its PGD and its logits
    return passes


def steps_per_epoch(cfg):
    return ((cfg.n_train or EXPECTED_COUNTS[cfg.dataset][0]) - cfg.n_val) // cfg.batch_size


def n_test(cfg):
    return cfg.n_test or EXPECTED_COUNTS[cfg.dataset][1]


def train_flops(cfg, from_epoch=0):
    """FLOPs of the epochs after from_epoch, with the per-epoch validation pass, and of
    the shared clean pre-training when a fresh run needs it and it is not finished here."""
    from gandef_tf import runs
    from gandef_tf.config import pretrain_config

    epochs = max(0, cfg.epochs - from_epoch)
    validation = cfg.n_val or n_test(cfg)
    per_epoch = steps_per_epoch(cfg) * cfg.batch_size * step_passes(cfg) + validation
    total = epochs * per_epoch * forward_flops(cfg.dataset)
    pre = pretrain_config(cfg)
    if pre is not None and from_epoch == 0 and not (runs.run_dir(pre) / "train.json").exists():
        total += train_flops(pre)
    return total


def eval_flops(cfg, attacks):
    """FLOPs of evaluating `attacks` ('original' included when named): the costly attacks
    on their strong_eval_n subset, pgd_adaptive once per beta of its grid against a
    discriminator."""
    from gandef_tf.attack_specs import BETA_GRID
    from gandef_tf.config import SUBSET_ATTACKS

    passes = 0
    for a in attacks:
        n = min(n_test(cfg), cfg.strong_eval_n) if a in SUBSET_ATTACKS else n_test(cfg)
        runs_ = len(BETA_GRID) if a == "pgd_adaptive" and cfg.is_gandef else 1
        passes += n * (1 + (0 if a == "original" else runs_ * _iters(cfg, a)))
    return passes * forward_flops(cfg.dataset)


def train_seconds(cfg, rate, from_epoch=0):
    return train_flops(cfg, from_epoch) / rate.train_rate(cfg.dataset, cfg.precision)


def eval_seconds(cfg, attacks, rate):
    return eval_flops(cfg, attacks) / rate.eval_rate(cfg.dataset)


def rate_from_bench(bench):
    """(train FLOP/s, eval FLOP/s) implied by one figures/bench.json record."""
    batch, attack = bench["batch"], bench.get("train_attack", "pgd1")
    flops = seconds = 0.0
    for name, t in bench["train_step_seconds"].items():
        if name == "vanilla":  # no attack: its step time is mostly fixed overhead
            continue
        method = name.removesuffix("_reuse")
        cfg = get_config("paper", "mnist", method, batch_size=batch, train_attack=attack,
                         disc_batch="reuse" if name.endswith("_reuse") else None)
        flops += batch * step_passes(cfg) * forward_flops("mnist")
        seconds += t
    paper = get_config("paper", "mnist", "gandef")
    per_example = eval_flops(paper, ("fgsm", "bim", "pgd1", "pgd2")) / n_test(paper)
    return flops / seconds, per_example * bench["eval_examples_per_s_all_attacks"]


def allcnn_rates(rec):
    """(('cifar10', (train FLOP/s, eval FLOP/s)),) from a benchmark's float32 allCNN rows
    (its paper-config Mix PGD step and its PGD-1 throughput), () when it has none."""
    step = rec.get("train_step_mix_pgd_cifar10_seconds", {}).get("float32")
    pgd = rec.get("pgd1_allcnn_examples_per_s", {}).get("float32")
    if not (step and pgd):
        return ()
    cfg = get_config("paper", "cifar10", "mix_pgd", precision="float32")
    train = cfg.batch_size * step_passes(cfg) * forward_flops("cifar10") / step
    ev = (1 + _iters(cfg, "pgd1")) * forward_flops("cifar10") * pgd
    return (("cifar10", (train, ev)),)


def benchmarks():
    """Every full benchmark record (one with training steps) in figures/bench*.json."""
    roots = dict.fromkeys([Path(os.environ.get("GANDEF_FIGURES_DIR", "figures")), REPO_FIGURES])
    out = []
    for root in roots:
        for path in sorted(root.glob("bench*.json")):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            for rec in ([data] if "device" in data else data.values()):
                if isinstance(rec, dict) and "train_step_seconds" in rec:
                    out.append((path, rec))
    return out


def gpu_rate(device="one GPU"):
    """A GPU's Rate from figures/gpu_proxy/*.json (a PyTorch version of the same steps:
    TensorFlow could not be installed on the GPU we had), else an assumed one."""
    for path in sorted((REPO_FIGURES / "gpu_proxy").glob("*.json")):
        rec = json.loads(path.read_text())
        rates = tuple((d, (v["train_flops_per_s"], v["eval_flops_per_s"]))
                      for d, v in sorted(rec["datasets"].items()))
        return Rate(rates[0][1][0], rates[0][1][1], device,
                    f"FLOP-based at the rates a PyTorch proxy of the same steps reached on "
                    f"{rec['device']} ({_short(path)}); this code has not run on a GPU",
                    by_dataset=rates)
    return Rate(ASSUMED_GPU_FLOPS, ASSUMED_GPU_FLOPS, device, "FLOP-based at an ASSUMED "
                f"{ASSUMED_GPU_FLOPS / 1e12:g} TFLOP/s: no record for a GPU")


@functools.lru_cache(maxsize=1)
def device_rate():
    """This device's Rate: its own benchmark, else another CPU's, else the GPU proxy's."""
    from gandef_tf.runs import device

    here = device()
    found = benchmarks()
    mine = [(p, r) for p, r in found if r["device"] == here]
    cpus = [(p, r) for p, r in found if r["device"].startswith("CPU")]
    if mine or (cpus and here.startswith("CPU")):
        path, rec = (mine or cpus)[-1]
        train, ev = rate_from_bench(rec)
        where = ("measured on this device" if mine
                 else f"measured on another CPU, {rec['device']}; hosts differ up to 3x")
        speedup = tuple((d, rec[f"bf16_vs_fp32_train_step_mix_pgd_{d}"]) for d in EXPECTED_COUNTS
                        if f"bf16_vs_fp32_train_step_mix_pgd_{d}" in rec)
        bf16 = (", bfloat16 training at its measured speed-up" if speedup
                else ", no bfloat16 row: bfloat16 priced as float32")
        allcnn = allcnn_rates(rec)
        scaled = ("allCNN's own measured rates" if allcnn
                  else "LeNet's rate FLOP-scaled to allCNN")
        return Rate(train, ev, here, f"{where} by {_short(path)} ({rec.get('date', '?')[:10]}), "
                                     f"{scaled}{bf16}",
                    by_dataset=(("mnist", (train, ev)),) + allcnn, bf16_speedup=speedup)
    return gpu_rate(here)


def _short(path):
    try:
        return str(Path(path).resolve().relative_to(REPO_FIGURES.parent))
    except ValueError:
        return str(path)


def duration(seconds):
    """'45 s', '12 min', '3.4 h', '12 days': one number a person can plan with."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
