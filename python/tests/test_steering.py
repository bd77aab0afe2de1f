"""Steering a watched PyTorch run through a real `ltmlp host` with `ltmlp ctl`: pause and
resume, the rate and momentum, a checkpoint, stop, and the commands a model cannot carry out
refused with a clear message; `ls` and `report` read the folder."""

from __future__ import annotations

import json
import time

import torch

from conftest import records, stderr_of, summary, wait_until

PLAIN_COMMANDS = ["pause", "resume", "step", "stop", "checkpoint", "set_learning_rate",
                  "scale_learning_rate", "set", "set_momentum"]


def answers(ltmlp, run_dir) -> bool:
    return ltmlp("ctl", str(run_dir), "status").returncode == 0


def ok(out) -> str:
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip()


def refused(out, says: str) -> None:
    assert out.returncode == 1, out.stdout + out.stderr
    assert says in out.stderr, out.stderr


def test_a_plain_model_is_paused_steered_checkpointed_and_stopped(ltmlp, start_trainer, tmp_path):
    run_dir, result = tmp_path / "run", tmp_path / "result.json"
    trainer = start_trainer(str(run_dir), "--epochs", "200", "--result", str(result))
    wait_until("the watched run to answer", lambda: answers(ltmlp, run_dir))
    status = ltmlp.status(run_dir)
    assert status["commands"] == PLAIN_COMMANDS
    assert [t["key"] for t in status["tunables"]] == ["train.learning_rate", "train.momentum"]

    wait_until("the first epoch", lambda: len(records(run_dir)) >= 1)
    said = ok(ltmlp("ctl", str(run_dir), "pause"))
    assert said.startswith("paused at iteration"), said
    paused_at = int(said.split()[-1])
    wait_until("the paused state", lambda: ltmlp.status(run_dir)["state"] == "paused")
    before = ltmlp.status(run_dir)["iteration"]
    time.sleep(0.6)
    assert ltmlp.status(run_dir)["iteration"] == before, "a paused run does not train"

    assert "learning rate → 0.05" in ok(ltmlp("ctl", str(run_dir), "set", "train.learning_rate=0.05"))
    assert "momentum → 0.8" in ok(ltmlp("ctl", str(run_dir), "set", "train.momentum=0.8"))
    assert ltmlp.status(run_dir)["tunables"][0]["value"] == "0.05"
    said = ok(ltmlp("ctl", str(run_dir), "checkpoint"))
    checkpoint = run_dir / "torch_checkpoint.pt"
    assert str(checkpoint) in said
    saved = torch.load(checkpoint, weights_only=False)
    assert set(saved) >= {"model", "optimizer", "epoch", "iteration"}
    assert saved["optimizer"]["param_groups"][0]["lr"] == 0.05
    assert saved["iteration"] == paused_at

    # Refused: by the host (not declared), and out of range.
    refused(ltmlp("ctl", str(run_dir), "toggle", "a"), "does not carry out `toggle`")
    refused(ltmlp("ctl", str(run_dir), "reestimate"), "does not carry out `reestimate`")
    refused(ltmlp("ctl", str(run_dir), "set", "train.momentum=1.5"), "outside")

    ok(ltmlp("ctl", str(run_dir), "resume"))
    wait_until("training again", lambda: ltmlp.status(run_dir)["iteration"] > before)
    ok(ltmlp("ctl", str(run_dir), "stop"))
    assert trainer.wait(timeout=60) == 0, stderr_of(trainer)

    got = json.loads(result.read_text())
    assert got["learning_rate"] == 0.05 and got["momentum"] == 0.8 and got["stopped"]
    end = summary(run_dir)
    assert end["state"] == "stopped" and end["reason"] == "stopped on request"
    assert end["steering_actions"] >= 6
    actions = [json.loads(line) for line in (run_dir / "actions.jsonl").read_text().splitlines()]
    assert any(a.get("steer", a).get("ok") is False for a in actions)
    listed = ltmlp("ls", str(tmp_path))
    assert listed.returncode == 0 and "stopped" in listed.stdout, listed.stdout + listed.stderr
    report = ltmlp("report", str(tmp_path))
    assert report.returncode == 0, report.stderr
    assert "`run`: stopped after epoch" in report.stdout and "(stopped on request)" in report.stdout, report.stdout


def test_a_transformed_mlp_takes_toggles_and_reports_its_flags(ltmlp, start_trainer, tmp_path):
    run_dir, result = tmp_path / "run", tmp_path / "result.json"
    trainer = start_trainer(str(run_dir), "--model", "transformed", "--epochs", "200", "--result", str(result))
    wait_until("the watched run to answer", lambda: answers(ltmlp, run_dir))
    status = ltmlp.status(run_dir)
    assert "toggle" in status["commands"] and "reestimate" in status["commands"]
    declared = json.loads((run_dir / "run.json").read_text())
    assert declared["trainer"]["config"]["transforms.alpha"] is True  # the switches at the start
    assert declared["producer"]["name"] == "torch-TransformedMLP"
    wait_until("the first epoch", lambda: len(records(run_dir)) >= 1)
    assert records(run_dir)[0]["flags"] == {"alpha": True, "beta": True, "gamma": False}

    assert ok(ltmlp("ctl", str(run_dir), "toggle", "a")) == "alpha off"
    # ctl status has the switches as the toggle left them, before any evaluation.
    assert ltmlp.status(run_dir)["flags"] == {"alpha": False, "beta": True, "gamma": False}
    assert ok(ltmlp("ctl", str(run_dir), "toggle", "g")) == "gamma on"
    assert ltmlp.status(run_dir)["flags"] == {"alpha": False, "beta": True, "gamma": True}
    assert "re-estimated" in ok(ltmlp("ctl", str(run_dir), "reestimate"))
    kept = len(records(run_dir))
    wait_until("an epoch after the toggles", lambda: len(records(run_dir)) > kept)
    ok(ltmlp("ctl", str(run_dir), "stop"))
    assert trainer.wait(timeout=60) == 0, stderr_of(trainer)

    assert json.loads(result.read_text())["flags"] == {"alpha": False, "beta": True, "gamma": True}
    last = records(run_dir)[-1]
    assert last["flags"] == {"alpha": False, "beta": True, "gamma": True}
    # Alpha off is alpha zero in every unit; gamma on is re-estimated away from 1.
    layer = last["layers"][0]
    assert layer["alpha"]["min"] == layer["alpha"]["max"] == 0.0
    assert layer["gamma"]["min"] != 1.0 or layer["gamma"]["max"] != 1.0
    assert len(records(run_dir, "units.jsonl")[-1]["layers"][0]["units"]["gamma"]) == 6
    # The summary's examples/s: the run's average (batch_size=20 declared), a number.
    rate = summary(run_dir)["examples_per_second"]
    assert isinstance(rate, float) and rate > 0, rate
