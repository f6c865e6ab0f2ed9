"""One frozen config per run; presets are data.

    from gandef_tf.config import get_config
    cfg = get_config("quick", "mnist", "gandef", seed=0)
    print(cfg.epochs, deviations(cfg))

The presets' values live in gandef_tf/presets.py: `paper` holds those of
../shared/REFERENCE.md (paper, then the authors' and the baselines' own code), except
where those do not train at all (presets.FIXES); `quick` is the CPU-scale reproduction of
both datasets; `smoke` runs in seconds for tests. Every
difference from the published values is listed by `deviations()`, so no output can pass
a reduced run off as the paper's scale.
"""

import dataclasses
import re
from typing import Optional

from gandef_tf import GandefError
from gandef_tf.presets import PAPER, PAPER_ATTACKS, PUBLISHED, QUICK, QUICK_METHOD, SMOKE

DATASETS = ("mnist", "cifar10")
METHODS = ("vanilla", "pure_pgd", "mix_pgd", "logit_pairing", "gandef", "gandef_v1")
PRESETS = ("paper", "quick", "smoke")
# Beyond the paper: attacks on the whole defended system (classifier and discriminator).
ADAPTIVE_ATTACKS = ("pgd_adaptive", "cw_merged")
EVAL_ATTACKS = PAPER_ATTACKS + ADAPTIVE_ATTACKS  # the default
# Beyond the paper: AutoAttack's white-box pair from IBM ART, an optional dependency
# (pip install -e ".[eval]"), so asked for by name: --eval_attacks=...,apgd_ce,apgd_dlr.
AUTOATTACK_ATTACKS = ("apgd_ce", "apgd_dlr")
KNOWN_ATTACKS = EVAL_ATTACKS + AUTOATTACK_ATTACKS
# The costly attacks run on a seeded subset of strong_eval_n test examples; the paper's
# four keep the whole evaluation set.
SUBSET_ATTACKS = ADAPTIVE_ATTACKS + AUTOATTACK_ATTACKS
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# GanDef's discriminator loss: the paper's equations, or what the authors' released code
# computes (sigmoid applied to D's probability: docs/gandef-loss.md, losses.py).
GANDEF_LOSSES = ("equation", "authors_code")
GANDEF_METHODS = ("gandef", "gandef_v1")
# allCNN's dropout layers: Table 4's (real dropout), or as the authors' code ran them
# (inactive: TF1's tf.layers.dropout without training= defaults to training=False;
# REFERENCE.md section 3). LeNet has no dropout layers, so MNIST runs never read it.
DROPOUTS = ("table4", "authors_code")
# How lr_values apply at lr_boundaries: "piecewise" holds each value until the next
# boundary (a step drop); "linear" interpolates between knots, lr_values[0] at step 0 and
# lr_values[i + 1] at lr_boundaries[i], then holds the last (a cyclic lr: 0 -> peak -> 0).
LR_SCHEDULES = ("piecewise", "linear")
# Fields that change how saved predictions are scored or batched, or which attacks are
# run, not what was trained: a finished run may be re-scored, or extended with attacks it
# lacks (a run stored with the paper's four attacks is extended, never refused).
EVAL_ONLY_FIELDS = ("threshold", "eval_batch_size", "eval_attacks", "strong_eval_n")
# Fields that record training without changing it: no deviation from the paper, but a
# resumed run keeps them (its curve would otherwise change spacing mid-way).
MONITOR_FIELDS = ("curve_every", "curve_n")


@dataclasses.dataclass(frozen=True)
class Config:
    preset: str
    dataset: str
    method: str
    seed: int = 0
    data_seed: int = 0  # draws the train/test subsets: the same for every method and seed
    n_train: Optional[int] = None  # None: the whole training set
    n_test: Optional[int] = None  # None: the whole test set
    n_val: int = 0  # training images held out (never trained on) for tuning probes
    batch_size: int = 128  # original examples per step (mixed methods add as many adversarial)
    epochs: int = 1
    # Clean epochs of a shared pre-training run (method "vanilla", tag "pretrain") whose
    # classifier every method of this preset/dataset/seed starts from (training.py).
    pretrain_epochs: int = 0
    pretrain_lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd (momentum)
    lr: float = 1e-4
    lr_boundaries: tuple = ()  # optimizer steps where the learning rate drops ...
    lr_values: tuple = ()  # ... to these values
    lr_schedule: str = "piecewise"  # | linear (LR_SCHEDULES)
    momentum: float = 0.9
    weight_decay: float = 0.0  # coefficient of sum(tf.nn.l2_loss(kernel)) over classifier kernels
    augment: bool = False  # pad-4 random crop + horizontal flip (CIFAR-10)
    dropout: str = "table4"  # | authors_code: allCNN's dropout layers inactive (DROPOUTS)
    train_attack: str = "pgd1"  # a name in attacks.REGISTRY[dataset]
    eps: Optional[float] = None  # overrides the registry's eps for every attack
    eps_iter: Optional[float] = None  # overrides the registry's step size for every attack
    attack_iter_cap: Optional[int] = None  # caps every attack's iterations (smoke only)
    eps_ramp_steps: int = 0  # training eps grows from 0 to eps over these optimizer steps
    alp_weight: float = 1.0  # lambda of logit pairing
    gamma: float = 2.0  # GanDef trade-off
    disc_steps: int = 1  # k of Algorithm 1
    disc_lr: float = 1e-3
    disc_batch: str = "fresh"  # fresh: a new batch + PGD for each D step (Algorithm 1) | reuse
    gandef_loss: str = "equation"  # | authors_code (GANDEF_LOSSES)
    # Training only: variables, logits and losses stay float32; evaluation always runs
    # on a float32 copy. get_config picks bfloat16 on CPUs that have it natively.
    precision: str = "float32"  # | mixed_float16 | mixed_bfloat16
    threshold: float = 0.5  # GanDef-Comb
    eval_attacks: tuple = EVAL_ATTACKS
    eval_batch_size: int = 250
    strong_eval_n: int = 1000  # examples for SUBSET_ATTACKS (all of them if fewer)
    # Fig. 2's curve (gandef_tf/curve.py): accuracy on curve_n seeded original test images
    # every curve_every optimizer steps (0: off). It monitors training, never changes it.
    curve_every: int = 0
    curve_n: int = 1000
    tag: str = ""  # a variant's name (e.g. "gamma0.5"): its folders are <method>-<tag>

    def __post_init__(self):
        _check(self.dataset in DATASETS, f"unknown dataset {self.dataset!r}; choose from {DATASETS}")
        _check(self.method in METHODS, f"unknown method {self.method!r}; choose from {METHODS}")
        _check(self.preset in PRESETS, f"unknown preset {self.preset!r}; choose from {PRESETS}")
        for name in ("seed", "data_seed"):
            _check_seed(name, getattr(self, name))
        for name in ("eps", "eps_iter"):
            v = getattr(self, name)
            _check(v is None or 0 < v <= 1, f"{name} must be in (0, 1], got {v}")
        if self.eps is not None or self.eps_iter is not None:
            from gandef_tf.attack_specs import spec_for

            for name in self.eval_attacks + (self.train_attack,):
                spec_for(self, name)
        unknown = sorted(set(self.eval_attacks) - set(KNOWN_ATTACKS))
        _check(not unknown, f"unknown attack(s) {unknown}; choose from {KNOWN_ATTACKS}")
        _check(self.curve_every >= 0 and self.curve_n >= 1,
               "curve_every must be >= 0 and curve_n >= 1")
        _check(self.strong_eval_n >= 1, f"strong_eval_n must be >= 1, got {self.strong_eval_n}")
        _check(0 <= self.threshold <= 1, f"threshold must be in [0, 1], got {self.threshold}")
        _check(self.optimizer in ("adam", "sgd"), f"unknown optimizer {self.optimizer!r}")
        _check(self.disc_batch in ("fresh", "reuse"), "disc_batch must be fresh or reuse")
        _check(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}")
        _check(self.dropout in DROPOUTS, f"dropout must be one of {DROPOUTS}, got {self.dropout!r}")
        _check(self.lr_schedule in LR_SCHEDULES,
               f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        _check(self.lr_schedule == "piecewise" or self.lr_boundaries,
               "lr_schedule='linear' needs lr_boundaries and lr_values (its knots)")
        _check(list(self.lr_boundaries) == sorted(set(self.lr_boundaries)),
               f"lr_boundaries must increase, got {self.lr_boundaries}")
        _check(self.gandef_loss in GANDEF_LOSSES, f"gandef_loss must be one of {GANDEF_LOSSES}")
        _check(self.n_val >= 0 and self.pretrain_epochs >= 0,
               "n_val and pretrain_epochs must be >= 0")
        _check(self.batch_size > 0 and self.epochs > 0 and self.disc_steps > 0,
               "batch_size, epochs and disc_steps must be positive")
        _check(self.gamma >= 0, f"gamma must be >= 0, got {self.gamma}")
        _check(re.fullmatch(r"[A-Za-z0-9._]*", self.tag) is not None,
               f"tag may hold letters, digits, '.' and '_' only, got {self.tag!r}")
        _check(len(self.lr_boundaries) + 1 == len(self.lr_values) or not self.lr_boundaries,
               "lr_values needs one more entry than lr_boundaries")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        _check(not unknown, f"unknown config fields {sorted(unknown)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**d)

    @property
    def is_gandef(self):
        return self.method in GANDEF_METHODS


def _check(ok, msg):
    if not ok:
        raise GandefError(msg)


def _check_seed(name, v):
    # numpy's seeding takes 0 <= seed < 2**32
    _check(isinstance(v, int) and 0 <= v < 2**32, f"{name} must be an integer in [0, 2**32), got {v!r}")


def paper_values(dataset, method, published=False):
    """The paper preset's values; published=True: the paper's and its sources' own, before
    the fixes that make every paper config train (presets.FIXES)."""
    _check(dataset in DATASETS, f"unknown dataset {dataset!r}; choose from {DATASETS}")
    _check(method in METHODS, f"unknown method {method!r}; choose from {METHODS}")
    return dict((PUBLISHED if published else PAPER)[dataset][method])


def native_bfloat16(cpuinfo=None):
    """The CPU computes bfloat16 natively (AMX or AVX512-BF16; oneDNN uses either)."""
    if cpuinfo is None:
        try:
            cpuinfo = open("/proc/cpuinfo").read()
        except OSError:  # not Linux: assume not
            return False
    flags = set(" ".join(l.split(":", 1)[1] for l in cpuinfo.splitlines()
                         if l.startswith("flags") and ":" in l).split())
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def default_precision():
    """Training precision when none is asked for (quick and paper presets): bfloat16 on a
    CPU with native bfloat16 and no GPU, else float32 (GPUs keep float32 unless asked;
    on Ampere and newer TensorFlow itself may use TF32 for float32 matmuls). Silent: a
    refusal or a plan prints only its own line (training says why, precision_note)."""
    if not native_bfloat16():
        return "float32"
    import tensorflow as tf  # only here: config stays importable without TensorFlow

    return "float32" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def precision_note(cfg):
    """The line training prints when a CPU preset trains in float32 for want of native
    bfloat16 (its runs take ~2-5x longer than on a host with it), else None."""
    if cfg.preset == "smoke" or cfg.precision != "float32" or native_bfloat16():
        return None
    return ("[precision] this CPU has no native bfloat16 (amx_bf16 / avx512_bf16): "
            "training in float32")


def get_config(preset, dataset, method, seed=0, **overrides):
    """The config of one run: preset values, then explicit overrides (None = keep)."""
    _check(preset in PRESETS, f"unknown preset {preset!r}; choose from {PRESETS}")
    _check_seed("seed", seed)  # before any preset value is looked up
    values = paper_values(dataset, method)
    if preset != "smoke" and overrides.get("precision") is None:
        # smoke stays float32: its tests compare weights exactly across strategies.
        values["precision"] = default_precision()
    if preset == "quick":
        values.update(QUICK[dataset])
        if dataset == "mnist":
            values.update(QUICK_METHOD.get(method, {}))
    elif preset == "smoke":
        values.update(SMOKE)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Config(preset=preset, dataset=dataset, method=method, seed=seed, **values)


# Fields that a method never reads, so a difference in them is no deviation of its run.
_UNUSED = {
    "gandef": ("alp_weight",),
    "logit_pairing": ("gamma", "disc_steps", "disc_lr", "disc_batch", "gandef_loss"),
    "other": ("alp_weight", "gamma", "disc_steps", "disc_lr", "disc_batch", "gandef_loss"),
}


# Fields that only a method's own phase reads: reset in the shared pre-training's config,
# so that every method of one preset/dataset/seed names the same pre-training run.
_METHOD_ONLY = ("alp_weight", "gamma", "disc_steps", "disc_lr", "disc_batch", "gandef_loss",
                "train_attack", "eps_ramp_steps", "eval_attacks")


def pretrain_config(cfg):
    """The clean pre-training run that cfg starts from (None without pre-training): method
    vanilla, tag 'pretrain', cfg.pretrain_epochs at a constant cfg.pretrain_lr."""
    if not cfg.pretrain_epochs:
        return None
    defaults = Config(preset=cfg.preset, dataset=cfg.dataset, method="vanilla")
    return dataclasses.replace(
        cfg, method="vanilla", tag="pretrain", epochs=cfg.pretrain_epochs, pretrain_epochs=0,
        lr=cfg.pretrain_lr, lr_boundaries=(), lr_values=(), lr_schedule="piecewise",
        **{k: getattr(defaults, k) for k in _METHOD_ONLY})


def deviations(cfg):
    """Human-readable differences between cfg and the published values of the same run
    (the paper preset's own fixes, too, are deviations)."""
    # The paper trained in float32, whatever precision this host would default to.
    paper = Config(preset="paper", dataset=cfg.dataset, method=cfg.method, seed=cfg.seed,
                   precision="float32", **paper_values(cfg.dataset, cfg.method, published=True))
    unused = _UNUSED["gandef" if cfg.is_gandef else cfg.method if cfg.method in _UNUSED
                     else "other"]
    unused += ("train_attack", "eps_ramp_steps") if cfg.method == "vanilla" else ()
    unused += ("dropout",) if cfg.dataset == "mnist" else ()
    out = []
    for f in dataclasses.fields(Config):
        if f.name in ("preset",) + EVAL_ONLY_FIELDS + MONITOR_FIELDS + unused:
            continue
        ours, theirs = getattr(cfg, f.name), getattr(paper, f.name)
        if ours != theirs:
            out.append(f"{f.name}={ours!r} (paper: {theirs!r})")
    return out
