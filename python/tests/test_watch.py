"""A watched PyTorch run end to end through a real `ltmlp host`: what the folder records (the
declared layers, every evaluation, the per-unit statistics as measured), a refused folder,
and the binary finder's message."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import ltmlp
import ltmlp.torch as lt
from conftest import records, summary
from ltmlp.host import HostError
from ltmlp.torch.hooks import Hooks


def conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.GELU(), nn.Linear(5, 2)
    )


def train(run: lt.Run, model: nn.Module, optimizer, x, y, epochs: int, steps: int) -> None:
    for _ in range(epochs):
        for _ in range(steps):
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            assert run.step(loss)
        run.epoch(train=loss.item(), valid={"loss": loss.item(), "error": 50.0}, test=(loss.item(), 40.0))


def test_a_watched_conv_net_records_every_epoch_and_its_units_as_measured(ltmlp_bin, tmp_path, capfd):
    torch.manual_seed(0)
    model = conv_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = torch.randn(16, 1, 6, 6), torch.randint(0, 2, (16,))
    run_dir = tmp_path / "conv"
    with lt.watch(model, str(run_dir), probe=x[:8], epochs=2, every=3, optimizer=optimizer,
                  settings={"train.seed": 0, "model": "conv"}) as run:
        train(run, model, optimizer, x, y, epochs=2, steps=4)
        _, direct = Hooks(model).run(lambda: model.eval()(x[:8]))
        model.train()
    header = json.loads((run_dir / "run.json").read_text())
    assert [(l["name"], l["units"], l["kind"]) for l in header["layers"]] == [
        ("input", 1, "input"), ("1", 3, "relu"), ("4", 5, "gelu"), ("output", 2, "softmax")]
    assert header["optimizer"] == "adam"
    assert header["settings"]["model"] == "conv"
    kept = records(run_dir)
    assert [r["epoch"] for r in kept] == [1, 2] and [r["iteration"] for r in kept] == [4, 8]
    assert kept[1]["validation_error"] == 50.0 and kept[1]["test_error"] == 40.0
    units = records(run_dir, "units.jsonl")[1]["layers"]
    assert [u["layer"] for u in units] == [1, 2]
    for stats, recorded in zip(direct.layers, units):
        assert recorded["units"]["mean_out"] == pytest.approx(stats.mean_out, rel=1e-12)
        assert recorded["units"]["std_pre"] == pytest.approx(stats.std_pre, rel=1e-12)
        assert recorded["units"]["collapsed"] == stats.collapsed
    assert summary(run_dir)["state"] == "finished"


def test_an_exception_in_the_with_block_ends_the_run_stopped_with_the_reason(ltmlp_bin, tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    run_dir = tmp_path / "raised"
    with pytest.raises(ValueError):
        with lt.watch(model, str(run_dir), probe=torch.randn(5, 3), epochs=3) as run:
            run.step()
            raise ValueError("bad batch shape")
    end = summary(run_dir)
    assert end["state"] == "stopped"
    assert "ValueError: bad batch shape" in end["reason"], end["reason"]


def test_closing_early_is_a_stop_that_says_where(ltmlp_bin, tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.SiLU(), nn.Linear(4, 2))
    run_dir = tmp_path / "early"
    run = lt.watch(model, str(run_dir), probe=torch.randn(5, 3), epochs=3)
    run.epoch(train=1.0, valid=1.0)
    assert run.close() == 0  # the host exits 0: the end came as a `finished` event
    assert summary(run_dir)["reason"] == "the script closed the run after epoch 1 of 3"


def test_a_folder_holding_a_run_is_refused_with_the_hosts_message(ltmlp_bin, tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2))
    run_dir = tmp_path / "taken"
    lt.watch(model, str(run_dir), probe=torch.randn(5, 3), epochs=1).close()
    with pytest.raises(HostError) as refused:
        lt.watch(model, str(run_dir), probe=torch.randn(5, 3), epochs=1)
    assert "ltmlp host" in str(refused.value) and "exited with status" in str(refused.value)
    # force moves the old run aside.
    lt.watch(model, str(run_dir), probe=torch.randn(5, 3), epochs=1, force=True).close()


def test_the_binary_finder_says_how_to_get_the_binary(monkeypatch):
    monkeypatch.setenv("LTMLP_BIN", "/nonexistent/ltmlp")
    with pytest.raises(ltmlp.BinaryNotFound, match="cargo build --release"):
        ltmlp.find_binary()
    monkeypatch.delenv("LTMLP_BIN")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ltmlp.BinaryNotFound, match="not on PATH"):
        ltmlp.find_binary()


def test_resume_after_epoch_n_continues_the_folder_from_a_checkpoint_of_your_own(ltmlp_bin, tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run_dir = tmp_path / "own"
    x = torch.randn(5, 3)
    run = lt.watch(model, str(run_dir), probe=x, epochs=3, optimizer=optimizer)
    for epoch in range(2):
        for _ in range(4):
            run.step(0.5)
        if epoch == 0:
            torch.save(model.state_dict(), tmp_path / "mine.pt")  # the user's own checkpoint
        run.epoch(train=1.0 - epoch / 10, valid=1.0)
    run.close()
    assert summary(run_dir)["state"] == "stopped"

    model.load_state_dict(torch.load(tmp_path / "mine.pt"))
    with pytest.raises(ValueError, match="holds 2 evaluations; give at most 2"):
        lt.watch(model, str(run_dir), probe=x, epochs=3, resume=5)
    with lt.watch(model, str(run_dir), probe=x, epochs=3, optimizer=optimizer, resume=1) as run:
        assert (run.epochs_done, run.iteration) == (1, 4)
        for epoch in range(run.epochs_done, 3):
            for _ in range(4):
                run.step(0.25)
            run.epoch(train=0.5, valid=0.5)
    kept = records(run_dir)
    assert [(r["epoch"], r["iteration"], r["train_loss"]) for r in kept] == [
        (1, 4, 1.0), (2, 8, 0.5), (3, 12, 0.5)]
    # The evaluation the resume undid is kept aside, not lost.
    aside = (run_dir / "metrics.jsonl.after-checkpoint").read_text().splitlines()
    assert json.loads(aside[0])["train_loss"] == 0.9
    assert summary(run_dir)["state"] == "finished"
