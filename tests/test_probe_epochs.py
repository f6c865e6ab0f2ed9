"""Epoch probes (experiments/probe_epochs.py): one row per epoch, scored on held-out
images, the training attack's accuracy in both modes, resumable, other probes' rows kept."""

import json

import numpy as np
import pytest

from experiments import probe_epochs, probe_queues
from gandef_tf import GandefError, data, runs
from gandef_tf.config import get_config
from tests.conftest import synthetic_mnist


@pytest.fixture
def synthetic(monkeypatch):
    monkeypatch.setattr(data, "load", lambda dataset, n_train=None, n_test=None, seed=0: (
        synthetic_mnist(n_train or 320, 1000 + seed), synthetic_mnist(n_test or 64, 2000 + seed)))


def cfg(epochs=2):
    return get_config("smoke", "mnist", "mix_pgd", n_val=64, epochs=epochs)


def test_probe_rows_resume_and_keep_other_probes(synthetic, tiny_models, tmp_path, monkeypatch):
    out = tmp_path / "probes.jsonl"
    out.write_text(json.dumps({"name": "other", "epoch": 1}) + "\n")
    original = probe_epochs.write_rows

    def stop_after_first_row(out_, name, rows):
        original(out_, name, rows)
        raise KeyboardInterrupt

    monkeypatch.setattr(probe_epochs, "write_rows", stop_after_first_row)
    with pytest.raises(KeyboardInterrupt):
        probe_epochs.run(cfg(), "p", {"n_val": 64}, out, score_n=32, train_n=16, verbose=0)
    monkeypatch.setattr(probe_epochs, "write_rows", original)
    attacked, accuracy = [], probe_epochs.train_attack_accuracy
    monkeypatch.setattr(probe_epochs, "train_attack_accuracy",
                        lambda t, x, y: attacked.append(len(x)) or accuracy(t, x, y))
    rows = probe_epochs.run(cfg(), "p", {"n_val": 64}, out, score_n=32, train_n=16, verbose=0)
    assert attacked == [16, 32]  # the training subset, then the scored validation images
    lines = [json.loads(l) for l in out.read_text().splitlines()]
    assert lines[0] == {"name": "other", "epoch": 1}
    mine = [l for l in lines if l["name"] == "p"]
    assert [r["epoch"] for r in mine] == [r["epoch"] for r in rows] == [1, 2]
    assert mine[0].get("resumed_after") == [] and mine[1]["resumed_after"] == [1]
    for r in mine:
        assert set(r["validation"]) >= {"original", "pgd1"} and r["score_n"] == 32
        assert set(r["train_attack"]) == {"inference_mode", "training_mode"}
        assert set(r["validation_train_attack"]) == {"inference_mode", "training_mode"}
        assert 0 <= r["train_attack"]["inference_mode"] <= 1 and r["train_n"] == 16
        assert r["config"]["epochs"] == 2 and r["commit"]
    assert mine[1]["step"] > mine[0]["step"] > 0
    # finished: re-running trains nothing and keeps the rows
    again = probe_epochs.run(cfg(), "p", {"n_val": 64}, out, score_n=32, train_n=16, verbose=0)
    assert [r["epoch"] for r in again] == [1, 2]
    assert out.read_text().count('"name": "p"') == 2


def test_a_probe_name_refuses_another_config(synthetic, tiny_models, tmp_path):
    out = tmp_path / "probes.jsonl"
    probe_epochs.run(cfg(1), "q", {}, out, score_n=16, train_n=8, verbose=0)
    with pytest.raises(GandefError, match="another config"):
        probe_epochs.run(cfg(2), "q", {}, out, score_n=16, train_n=8, verbose=0)


def test_rows_made_on_another_machine_are_kept(synthetic, tiny_models, tmp_path):
    import shutil

    out = tmp_path / "probes.jsonl"
    probe_epochs.run(cfg(2), "n", {}, out, score_n=16, train_n=8, verbose=0)
    rdir = probe_epochs.probe_root(cfg(2)) / "n"
    shutil.rmtree(rdir)  # a new machine: the committed rows, no checkpoint
    before = out.read_text()
    rows = probe_epochs.run(cfg(2), "n", {}, out, score_n=16, train_n=8, verbose=0)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert not rdir.exists() and out.read_text() == before  # finished: nothing retrained
    out.write_text(before.splitlines()[0] + "\n")  # stopped after epoch 1 elsewhere
    with pytest.raises(GandefError, match="rows up to epoch 1 .* no checkpoint that far"):
        probe_epochs.run(cfg(2), "n", {}, out, score_n=16, train_n=8, verbose=0)
    assert not rdir.exists() and out.read_text() == before.splitlines()[0] + "\n"
    other = get_config("smoke", "mnist", "mix_pgd", n_val=64, epochs=2, lr=0.5)
    with pytest.raises(GandefError, match="rows in .* made with another config"):
        probe_epochs.run(other, "n", {}, out, score_n=16, train_n=8, verbose=0)


def test_probe_pretraining_never_writes_the_committed_results(synthetic, tiny_models, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    c = get_config("smoke", "mnist", "vanilla", n_val=64, epochs=1, pretrain_epochs=1)
    root = probe_epochs.probe_root(c)
    probe_epochs.run(c, "r", {}, tmp_path / "o.jsonl", score_n=16, train_n=8, verbose=0)
    assert (root / "smoke/mnist/vanilla-pretrain/seed0/train.json").exists()
    assert (root / "results/smoke/mnist/vanilla-pretrain/seed0/history.csv").exists()
    assert not (tmp_path / "results").exists()


def test_an_epochs_batches_are_fixed_and_a_resume_skips_exactly_the_trained_ones():
    c = get_config("smoke", "mnist", "pure_pgd", batch_size=4)
    x = np.arange(22 * 2, dtype="float32").reshape(22, 2)
    y = np.arange(22, dtype="int64")
    whole = [b[1].numpy().tolist() for b in probe_epochs.epoch_batches(c, x, y, epoch=3)]
    tail = [b[1].numpy().tolist() for b in probe_epochs.epoch_batches(c, x, y, 3, skip=2)]
    assert len(whole) == 5 and tail == whole[2:]
    assert sorted(sum(whole, [])) == sorted(set(sum(whole, [])))  # no image twice
    other = [b[1].numpy().tolist() for b in probe_epochs.epoch_batches(c, x, y, epoch=4)]
    assert other != whole
    xb, yb = next(iter(probe_epochs.epoch_batches(c, x, y, epoch=3)))
    assert np.array_equal(xb.numpy(), x[yb.numpy()])  # images stay with their labels


def test_a_probe_resumes_within_an_epoch(synthetic, tiny_models, tmp_path, monkeypatch):
    out = tmp_path / "probes.jsonl"
    original, saves = runs.save_checkpoint, []

    def stop_at_second_mid_epoch_save(rdir, trainer, epoch, elapsed, batch=0):
        original(rdir, trainer, epoch, elapsed, batch=batch)
        saves.append((epoch, batch))
        if (epoch, batch) == (1, 2):
            raise KeyboardInterrupt

    monkeypatch.setattr(runs, "save_checkpoint", stop_at_second_mid_epoch_save)
    with pytest.raises(KeyboardInterrupt):
        probe_epochs.run(cfg(), "m", {}, out, score_n=16, train_n=8, verbose=0, save_every=0)
    steps = saves.index((1, 0))  # the batches of one epoch
    assert steps > 2 and saves == [(0, b) for b in range(1, steps + 1)] + [(1, 0), (1, 1), (1, 2)]
    monkeypatch.setattr(runs, "save_checkpoint", original)
    rows = probe_epochs.run(cfg(), "m", {}, out, score_n=16, train_n=8, verbose=0)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["resumed_after"] == [round(1 + 2 / steps, 4)]
    assert rows[1]["step"] == 2 * steps  # the resumed epoch trained only its last batches


def test_every_resume_and_each_epochs_whole_time_are_recorded(synthetic, tiny_models, tmp_path,
                                                             monkeypatch):
    out, original = tmp_path / "probes.jsonl", runs.save_checkpoint

    def stop_at(at):
        def save(rdir, trainer, epoch, elapsed, batch=0):
            original(rdir, trainer, epoch, elapsed, batch=batch)
            if (epoch, batch) == at:
                raise KeyboardInterrupt
        return save

    for at in ((0, 1), (0, 2)):  # two processes stopped before the first row
        monkeypatch.setattr(runs, "save_checkpoint", stop_at(at))
        with pytest.raises(KeyboardInterrupt):
            probe_epochs.run(cfg(), "t", {}, out, score_n=16, train_n=8, verbose=0, save_every=0)
    monkeypatch.setattr(runs, "save_checkpoint", original)
    rows = probe_epochs.run(cfg(), "t", {}, out, score_n=16, train_n=8, verbose=0)
    steps = rows[0]["step"]
    assert rows[0]["resumed_after"] == rows[1]["resumed_after"] == [
        round(1 / steps, 4), round(2 / steps, 4)]
    first, second = rows[0]["elapsed_seconds"], rows[1]["elapsed_seconds"]
    assert rows[0]["train_seconds"] == first >= rows[0]["segment_seconds"]
    assert rows[1]["train_seconds"] == pytest.approx(second - first, abs=0.11)
    assert rows[1]["segment_seconds"] == pytest.approx(rows[1]["train_seconds"], abs=0.11)


def test_an_epoch_checkpointed_but_not_scored_is_scored_on_resume(synthetic, tiny_models,
                                                                 tmp_path, monkeypatch):
    out = tmp_path / "probes.jsonl"
    original = probe_epochs.score

    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(probe_epochs, "score", stopped)
    with pytest.raises(KeyboardInterrupt):
        probe_epochs.run(cfg(1), "s", {}, out, score_n=16, train_n=8, verbose=0)
    assert not out.exists() and runs.checkpoint_epoch(probe_epochs.probe_root(cfg(1)) / "s")
    monkeypatch.setattr(probe_epochs, "score", original)
    rows = probe_epochs.run(cfg(1), "s", {}, out, score_n=16, train_n=8, verbose=0)
    assert [r["epoch"] for r in rows] == [1] and rows[0]["segment_seconds"] is None
    assert rows[0]["train_seconds"] == rows[0]["elapsed_seconds"] > 0  # from the stopped process
    assert set(rows[0]["validation"]) >= {"original", "pgd1"}


def test_a_queue_runs_its_probes_in_order_and_leaves_a_held_one(synthetic, tiny_models, tmp_path,
                                                                monkeypatch):
    import fcntl

    monkeypatch.setattr(probe_queues, "SCHEDULES", {"a": ["lr=0.002", "n_val=64"],
                                                    "b": ["lr=0.003", "n_val=64"]})
    monkeypatch.setattr(probe_queues, "QUEUES", {0: ["table4.a", "table4.b"]})
    monkeypatch.setattr(probe_queues.os, "sched_setaffinity", lambda pid, cores: None)
    out, c = tmp_path / "q.jsonl", get_config("smoke", "mnist", "pure_pgd", n_val=64)
    root = probe_epochs.probe_root(c)
    root.mkdir(parents=True)
    kw = dict(score_n=16, train_n=8, verbose=0, save_every=1800, preset="smoke",
              dataset="mnist", epochs=1)
    with open(root / "pure_pgd.table4.a.lock", "a") as held:  # another process runs "a"
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        probe_queues.run_queue(0, out, **kw)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["name"], r["epoch"]) for r in rows] == [("pure_pgd.table4.b", 1)]
    assert rows[0]["config"]["lr"] == 0.003 and rows[0]["config"]["dropout"] == "table4"
    probe_queues.run_queue(0, out, **kw)  # "a" now; "b" is finished and left as it is
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["name"], r["epoch"]) for r in rows) == [("pure_pgd.table4.a", 1),
                                                             ("pure_pgd.table4.b", 1)]


def test_a_stopped_probe_does_not_stop_its_queue(tmp_path, monkeypatch):
    monkeypatch.setattr(probe_queues, "SCHEDULES", {"a": ["n_val=64"], "b": ["n_val=64"]})
    monkeypatch.setattr(probe_queues, "QUEUES", {0: ["table4.a", "table4.b"]})
    monkeypatch.setattr(probe_queues.os, "sched_setaffinity", lambda pid, cores: None)
    tried = []

    def run(cfg, name, *args):
        tried.append(name)
        if name.endswith(".a"):
            raise GandefError("a non-finite loss in epoch 1")

    monkeypatch.setattr(probe_queues, "run", run)
    probe_queues.run_queue(0, tmp_path / "q.jsonl", 16, 8, 0, 600, preset="smoke",
                           dataset="mnist", epochs=1)
    assert tried == ["pure_pgd.table4.a", "pure_pgd.table4.b"]


def test_report_reads_where_the_queues_write():
    from experiments import probe_report

    assert probe_report.DEFAULT_ROWS == probe_queues.DEFAULT_OUT
