"""gandef_tf.config: the paper preset follows ../shared/REFERENCE.md, every difference from
the paper is listed as a deviation, bad values are refused in one error, and a config
round-trips through its JSON (the run folder's config.json)."""

import json

import pytest

from gandef_tf import GandefError
from gandef_tf.config import METHODS, Config, deviations, get_config, paper_values


def test_paper_values_follow_the_reference():
    g = paper_values("mnist", "gandef")
    assert (g["lr"], g["disc_lr"], g["gamma"], g["disc_steps"], g["batch_size"], g["epochs"]) == \
        (1e-4, 1e-3, 2.0, 1, 128, 80)
    gc = paper_values("cifar10", "gandef")
    assert (gc["weight_decay"], gc["epochs"], gc["augment"]) == (1e-3, 350, True)
    assert paper_values("cifar10", "logit_pairing")["alp_weight"] == 0.01
    assert paper_values("mnist", "logit_pairing")["alp_weight"] == 1.0
    p = paper_values("mnist", "pure_pgd")
    assert (p["optimizer"], p["lr"], p["batch_size"], p.get("weight_decay", 0.0)) == ("adam", 1e-4, 50, 0.0)
    pc = paper_values("cifar10", "pure_pgd", published=True)
    assert (pc["optimizer"], pc["lr_values"], pc["lr_boundaries"], pc["weight_decay"]) == \
        ("sgd", (0.1, 0.01, 0.001), (40000, 60000), 2e-4)
    cfg = get_config("paper", "mnist", "gandef")
    assert (cfg.train_attack, cfg.threshold, cfg.disc_batch, cfg.n_train) == ("pgd1", 0.5, "fresh", None)


@pytest.mark.parametrize("method", ["vanilla", "pure_pgd", "mix_pgd", "logit_pairing"])
def test_paper_cifar10_baselines_train_with_the_authors_schedule_and_say_so(method):
    """Madry's SGD lr 0.1 does not train allCNN (figures/paper/probe.json): the paper preset
    runs GanDef's own CIFAR-10 schedule for every method, listed among the deviations."""
    cfg = get_config("paper", "cifar10", method, precision="float32")
    gandef = get_config("paper", "cifar10", "gandef", precision="float32")
    shared = ("optimizer", "lr", "lr_boundaries", "lr_values", "weight_decay", "epochs",
              "batch_size", "augment")
    assert [getattr(cfg, f) for f in shared] == [getattr(gandef, f) for f in shared]
    assert cfg.alp_weight == paper_values("cifar10", method, published=True).get("alp_weight", 1.0)
    dev = deviations(cfg)
    assert "optimizer='adam' (paper: 'sgd')" in dev and "lr=0.0001 (paper: 0.1)" in dev
    assert "lr_values=() (paper: (0.1, 0.01, 0.001))" in dev
    assert paper_values("mnist", method) == paper_values("mnist", method, published=True)


def test_deviations_list_every_difference_from_the_paper():
    assert deviations(get_config("paper", "cifar10", "gandef", precision="float32")) == []
    # The paper trained in float32: bfloat16 (a CPU default here) is a deviation.
    assert deviations(get_config("paper", "cifar10", "gandef", precision="mixed_bfloat16")) == [
        "precision='mixed_bfloat16' (paper: 'float32')"]
    cfg = get_config("smoke", "mnist", "gandef")
    smoke = deviations(cfg)
    assert any(d.startswith(f"n_train={cfg.n_train} ") for d in smoke)
    assert any(d.startswith(f"attack_iter_cap={cfg.attack_iter_cap} ") for d in smoke)
    # scoring-only fields are not deviations
    assert deviations(get_config("paper", "mnist", "gandef", threshold=0.3,
                                 precision="float32")) == []


@pytest.mark.parametrize("kwargs,match", [
    (dict(dataset="svhn"), "unknown dataset"), (dict(method="adv"), "unknown method"),
    (dict(preset="huge"), "unknown preset"), (dict(eps=0.0), "eps"), (dict(eps=1.5), "eps"),
    (dict(eps_iter=2.0), "eps_iter"), (dict(threshold=1.01), "threshold"),
    (dict(disc_batch="old"), "disc_batch"), (dict(epochs=0), "positive"),
    (dict(optimizer="rmsprop"), "optimizer")])
def test_config_refuses_bad_values(kwargs, match):
    base = dict(preset="smoke", dataset="mnist", method="gandef")
    args = {**base, **{k: v for k, v in kwargs.items() if k in base}}
    over = {k: v for k, v in kwargs.items() if k not in base}
    with pytest.raises(GandefError, match=match):
        get_config(args["preset"], args["dataset"], args["method"], **over)


@pytest.mark.parametrize("method", METHODS)
def test_config_round_trips_through_json(method):
    cfg = get_config("smoke", "cifar10", method, seed=3, eps=0.1)
    back = Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    with pytest.raises(GandefError, match="unknown config fields"):
        Config.from_dict({**cfg.to_dict(), "colour": "red"})
