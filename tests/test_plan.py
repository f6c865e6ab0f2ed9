"""Results first: evaluate() reads results/ before it loads or trains anything, refuses to
retrain over saved results or to start work priced above the limit (one line each), and
the estimate behind that price follows the config and the benchmark."""

import dataclasses
import json
import shutil

import keras
import pytest

from conftest import REPO, module_dirs
from experiments.evaluate import evaluate
from experiments.plan import refusal
from gandef_tf import GandefError, estimate, plan, runs, training
from gandef_tf import evaluate as ev
from gandef_tf.config import get_config
from gandef_tf.scoring import VERSION

pytestmark = pytest.mark.filterwarnings("ignore:`shuffle=True`:UserWarning")
SMALL = dict(n_train=32, n_test=16, epochs=1, eval_attacks=("fgsm",), eval_batch_size=16)


def small(**kw):
    return get_config("smoke", "mnist", "vanilla", **{**SMALL, **kw})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One trained and evaluated tiny run, made once per module."""
    base = tmp_path_factory.mktemp("finished")
    with module_dirs(base, tiny=True):
        ev.evaluate(small(), verbose=0)
    return base


@pytest.fixture
def committed(finished, fake_data, isolated_dirs):
    """The run's results/ in this test's folder, as a fresh clone has them: no runs/."""
    shutil.copytree(finished / "results", isolated_dirs[1])
    return runs.results_dir(small())


def snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def no_work(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("a model was trained, loaded, or attacked")

    for name in ("train", "predict", "load_data"):
        monkeypatch.setattr(ev, name, fail)
    monkeypatch.setattr(training, "load_finished", fail)
    monkeypatch.setattr(keras.Model, "fit", fail)


def test_complete_results_need_no_model(committed, no_work, isolated_dirs):
    before = snapshot(isolated_dirs[1])
    assert plan.status(small()).work == "none"
    res = ev.evaluate(small(), verbose=0)
    assert res == json.loads((committed / "results.json").read_text())
    # an eval-only field differing (a batch size) changes nothing either
    assert ev.evaluate(small(eval_batch_size=8), verbose=0) == res
    assert snapshot(isolated_dirs[1]) == before  # not one file rewritten
    assert not isolated_dirs[0].exists()


def test_rescoring_needs_no_model(committed, no_work, isolated_dirs):
    stored = json.loads((committed / "results.json").read_text())
    del stored["robustness"]  # as a results.json from before the masking check
    runs.write_json(committed / "results.json", stored)
    assert plan.status(small()).work == "rescore"
    assert "robustness" in ev.evaluate(small(), verbose=0)
    assert not isolated_dirs[0].exists()


def test_results_of_an_older_scoring_are_rescored_without_a_model(committed, no_work,
                                                                  isolated_dirs):
    stored = json.loads((committed / "results.json").read_text())
    assert stored["scoring_version"] == VERSION
    fresh_robustness = json.loads(json.dumps(stored["robustness"]))
    del stored["scoring_version"]  # as a results.json from before versions were recorded
    stored["robustness"]["masking_flags"] = ["stale"]
    runs.write_json(committed / "results.json", stored)
    preds = (committed / "predictions.npz").read_bytes()
    assert plan.status(small()).work == "rescore"
    res = ev.evaluate(small(), verbose=0)
    assert res["scoring_version"] == VERSION and res["robustness"] == fresh_robustness
    assert [r["scoring_version"] for r in res["rescored"]] == [[1, VERSION]]
    assert res["commit"] == stored["commit"] and res["date"] == stored["date"]
    assert (committed / "predictions.npz").read_bytes() == preds
    assert plan.status(small()).work == "none"
    assert not isolated_dirs[0].exists()


def test_missing_attack_without_model_is_one_line_and_changes_nothing(committed, no_work,
                                                                      isolated_dirs):
    before = snapshot(isolated_dirs[1])
    cfg = small(eval_attacks=("fgsm", "bim"))
    assert plan.status(cfg).work == "retrain"
    with pytest.raises(GandefError) as e:
        evaluate(cfg, verbose=0)
    msg = str(e.value)
    assert "\n" not in msg and "lacks bim" in msg and str(committed) in msg
    assert str(runs.run_dir(cfg)) in msg  # where the model was looked for
    assert "--method=vanilla --seed=0 --eval_attacks=fgsm,bim --train; or, to keep them" in msg
    assert msg.endswith("experiments.reproduce --preset=smoke --dataset=mnist "
                        "--method=vanilla --seed=0 --threads=1 --train")
    assert snapshot(isolated_dirs[1]) == before and not isolated_dirs[0].exists()


def test_retrain_when_asked_evaluates_every_attack_afresh(committed, isolated_dirs):
    cfg = small(eval_attacks=("fgsm", "bim"))
    res = evaluate(cfg, verbose=0, allow_train=True)
    assert (runs.run_dir(cfg) / "train.json").exists()  # it did train
    assert set(res["accuracy"]) == {"original", "fgsm", "bim"}
    assert "extensions" not in res  # a new model: no prediction of the old one is kept


def test_results_of_another_config_are_refused(committed, no_work, isolated_dirs):
    before = snapshot(isolated_dirs[1])
    with pytest.raises(GandefError, match=r"another config \(differs in lr\)"):
        ev.evaluate(small(lr=0.5), verbose=0)
    assert snapshot(isolated_dirs[1]) == before


def test_work_over_the_limit_is_priced_and_refused(fake_data, no_work, isolated_dirs):
    cfg = small(epochs=10**6)
    st = plan.status(cfg)
    assert st.work == "train" and st.seconds() > estimate.LIMIT_S
    with pytest.raises(GandefError) as e:
        evaluate(cfg, verbose=0)
    msg = str(e.value)
    assert "\n" not in msg and "would train and evaluate 1 smoke run(s)" in msg
    assert "mnist/vanilla/seed0" in msg and "over the 30-minute limit" in msg
    assert estimate.duration(st.seconds()) in msg and "add --train" in msg
    assert estimate.device_rate().source in msg
    assert not isolated_dirs[0].exists() and not isolated_dirs[1].exists()
    # under the limit the same run may start: the refusal is the price, not the preset
    assert refusal([plan.status(small())]) is None


def test_experiments_train_never_retrains_over_saved_results(committed, no_work):
    """Its refusal names evaluate --train, which retrains and re-evaluates together."""
    st = plan.status(small(), train_only=True)
    assert st.work == "retrain"
    msg = refusal([st])
    assert "holds results" in msg and "experiments.evaluate" in msg and msg.endswith("--train")


# ---------------------------------------------------------------- the estimate

def test_flop_model_matches_the_benchmarks_step_times():
    """Per training step, the FLOP model's ratio to Mix PGD is the measured one within 15%:
    the estimate's costs are the costs the benchmark saw."""
    bench = json.loads((estimate.REPO_FIGURES / "bench.json").read_text())
    step = bench["train_step_seconds"]

    def passes(name):
        return estimate.step_passes(get_config(
            "paper", "mnist", name.removesuffix("_reuse"), batch_size=bench["batch"],
            train_attack=bench["train_attack"],
            disc_batch="reuse" if name.endswith("_reuse") else None))

    for name in ("pure_pgd", "logit_pairing", "gandef", "gandef_reuse", "vanilla"):
        model, measured = passes(name) / passes("mix_pgd"), step[name] / step["mix_pgd"]
        assert model == pytest.approx(measured, rel=0.15), name


def test_estimate_follows_the_config():
    rate = estimate.Rate(1e11, 1e11, "test device", "test")
    small = dict(n_train=1000, n_test=100, epochs=2, n_val=0, pretrain_epochs=0, disc_batch="fresh")
    base = get_config("quick", "cifar10", "gandef", **small)
    t = lambda **kw: estimate.train_seconds(get_config("quick", "cifar10", kw.pop("method", "gandef"),
                                                       **{**small, **kw}), rate)
    assert t(epochs=4) == pytest.approx(2 * t())
    assert t(n_train=4000) > 3.5 * t()
    assert t(train_attack="pgd2") > 2 * t()  # 20 steps instead of 7
    assert t(disc_batch="reuse") < 0.6 * t()  # no fresh batch, no second PGD
    assert t(method="vanilla") < t(method="pure_pgd") < t(method="mix_pgd") < t()
    assert estimate.train_seconds(base, rate, from_epoch=1) == pytest.approx(t() / 2)
    assert t(n_val=500) < 0.6 * t()  # held-out images are not trained on
    # a fresh run pays for the shared clean pre-training while it is not finished here
    assert t(pretrain_epochs=4) > t() + estimate.train_seconds(
        get_config("quick", "cifar10", "vanilla", **{**small, "epochs": 3}), rate)
    assert estimate.train_seconds(get_config("quick", "mnist", "gandef", n_train=1000, epochs=2),
                                  rate) < t() / 10  # LeNet costs a small part of allCNN
    one = estimate.eval_seconds(base, ["original", "pgd1"], rate)
    assert estimate.eval_seconds(base, ["original", "pgd1", "pgd2"], rate) > 3 * one
    assert estimate.eval_seconds(get_config("quick", "cifar10", "gandef", **{**small, "n_test": 400}),
                                 ["original", "pgd1"], rate) == pytest.approx(4 * one)


@pytest.mark.parametrize("device,source", [
    # the committed benchmark's own device: its rates are "this device's"
    (json.loads((REPO / "figures" / "bench.json").read_text())["device"], "measured on this device"),
    ("CPU (Some Other CPU, AVX2, 64 cores, x86_64)", "measured on another CPU"),
    ("1x GPU (NVIDIA H100 80GB HBM3)", "PyTorch proxy"),
])
def test_rate_names_its_source(device, source, monkeypatch):
    monkeypatch.setattr(runs, "device", lambda: device)
    estimate.device_rate.cache_clear()
    try:
        rate = estimate.device_rate()
    finally:
        estimate.device_rate.cache_clear()
    assert source in rate.source and rate.device == device
    if source == "PyTorch proxy":  # per network: LeNet's steps are too small for a GPU
        proxy = json.loads((estimate.REPO_FIGURES / "gpu_proxy" / "h100.json").read_text())
        for d in ("mnist", "cifar10"):
            assert rate.train_rate(d) == proxy["datasets"][d]["train_flops_per_s"]
            assert rate.eval_rate(d) == proxy["datasets"][d]["eval_flops_per_s"]
    else:
        bench = json.loads((estimate.REPO_FIGURES / "bench.json").read_text())
        assert rate.train_flops == pytest.approx(estimate.rate_from_bench(bench)[0])


@pytest.mark.parametrize("seconds,text", [(42, "42 s"), (600, "10 min"), (5 * 3600, "5.0 h"),
                                          (30 * 86400, "30 days")])
def test_duration(seconds, text):
    assert estimate.duration(seconds) == text


def test_bfloat16_training_is_priced_at_the_measured_speed_up():
    rate = estimate.Rate(1e11, 1e11, "test device", "test", bf16_speedup=(("cifar10", 4.0),))
    small = dict(n_train=1000, n_test=100, epochs=2, n_val=0, pretrain_epochs=0)
    t = lambda p, d="cifar10": estimate.train_seconds(get_config("quick", d, "mix_pgd",
                                                                 precision=p, **small), rate)
    assert t("mixed_bfloat16") == pytest.approx(t("float32") / 4)
    assert t("mixed_bfloat16", "mnist") == pytest.approx(t("float32", "mnist"))  # no row
    cfg = get_config("quick", "cifar10", "mix_pgd", precision="mixed_bfloat16", **small)
    assert estimate.eval_seconds(cfg, ["original", "pgd1"], rate) == pytest.approx(
        estimate.eval_seconds(dataclasses.replace(cfg, precision="float32"), ["original", "pgd1"],
                              rate))  # evaluation is float32 whatever trained the model


def test_allcnn_rates_come_from_its_own_benchmark_rows():
    rec = {"train_step_mix_pgd_cifar10_seconds": {"float32": 2.0},
           "pgd1_allcnn_examples_per_s": {"float32": 10.0}}
    (name, (train, ev)), = estimate.allcnn_rates(rec)
    cfg = get_config("paper", "cifar10", "mix_pgd", precision="float32")
    flops = estimate.forward_flops("cifar10")
    assert name == "cifar10"
    assert train == pytest.approx(cfg.batch_size * estimate.step_passes(cfg) * flops / 2.0)
    assert ev == pytest.approx((1 + 2 * 7) * flops * 10.0)  # PGD-7: 7 x (forward + gradient)
    assert estimate.allcnn_rates({}) == ()
