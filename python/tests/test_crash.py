"""The crash cases of a watched PyTorch run: the script raises, the script is killed with -9,
the host is killed mid-run (training goes on, a new host takes the folder, nothing recorded
is lost), and a killed run resumed from its checkpoint with `watch(…, resume=True)`."""

from __future__ import annotations

import json
import os
import signal
import time

from conftest import records, stderr_of, summary, wait_until


def test_a_script_that_raises_leaves_a_complete_folder_marked_stopped_with_the_reason(start_trainer, tmp_path, ltmlp):
    run_dir = tmp_path / "run"
    trainer = start_trainer(str(run_dir), "--raise-at", "30", "--sleep", "0")
    assert trainer.wait(timeout=120) != 0
    assert "the data loader broke" in stderr_of(trainer)
    end = summary(run_dir)
    assert end["state"] == "stopped"
    assert "RuntimeError: the data loader broke" in end["reason"], end["reason"]
    assert [r["epoch"] for r in records(run_dir)] == [1]
    for name in ("run.json", "metrics.csv", "actions.jsonl", "units.jsonl"):
        assert (run_dir / name).exists(), name
    # A foreign run has no config.toml: run.json describes it (docs/protocol.md).
    assert not (run_dir / "config.toml").exists()
    assert json.loads((run_dir / "run.json").read_text())["state"] == "stopped"
    listed = ltmlp("ls", str(run_dir))
    assert "stopped" in listed.stdout and "RuntimeError" in listed.stdout, listed.stdout


def test_a_script_killed_with_9_leaves_its_run_stopped_with_the_reason(start_trainer, tmp_path):
    run_dir = tmp_path / "run"
    trainer = start_trainer(str(run_dir), "--epochs", "200")
    wait_until("the first epoch", lambda: len(records(run_dir)) >= 1)
    trainer.kill()
    trainer.wait()
    wait_until("the host to complete the folder", lambda: (run_dir / "summary.json").exists())
    end = summary(run_dir)
    assert end["state"] == "stopped"
    assert "without a `finished` event" in end["reason"], end["reason"]
    assert len(records(run_dir)) >= 1


def test_a_killed_host_is_replaced_and_no_evaluation_is_lost(start_trainer, tmp_path, ltmlp):
    run_dir, result = tmp_path / "run", tmp_path / "result.json"
    trainer = start_trainer(str(run_dir), "--epochs", "6", "--sleep", "0.03", "--result", str(result))
    wait_until("the first epoch", lambda: len(records(run_dir)) >= 1)
    host = ltmlp.status(run_dir)["pid"]
    os.kill(host, signal.SIGKILL)
    assert trainer.wait(timeout=120) == 0, stderr_of(trainer)
    said = stderr_of(trainer)
    assert said.count("HostLost") == 1, said
    assert "a new host is started on the same folder" in said
    assert [r["epoch"] for r in records(run_dir)] == [1, 2, 3, 4, 5, 6]
    end = summary(run_dir)
    assert end["state"] == "finished" and end["epochs_completed"] == 6
    assert json.loads(result.read_text())["steps"] == 120


def test_evaluations_made_while_no_host_runs_are_held_and_sent_to_the_next_one(start_trainer, tmp_path, ltmlp, ltmlp_bin):
    # The trainer's `ltmlp` is a wrapper that refuses to start while BLOCK exists.
    block = tmp_path / "BLOCK"
    wrapper = tmp_path / "ltmlp-wrapper"
    wrapper.write_text(
        f"#!/bin/sh\nif [ -e '{block}' ]; then echo 'ltmlp host: blocked by the test' >&2; exit 1; fi\n"
        f"exec '{ltmlp_bin}' \"$@\"\n"
    )
    wrapper.chmod(0o755)
    run_dir = tmp_path / "run"
    trainer = start_trainer(str(run_dir), "--epochs", "12", "--sleep", "0.03", binary=str(wrapper))
    wait_until("the first epoch", lambda: len(records(run_dir)) >= 1)
    block.touch()
    os.kill(ltmlp.status(run_dir)["pid"], signal.SIGKILL)
    wait_until("a refused restart", lambda: "a new host could not start" in stderr_of(trainer))
    held = len(records(run_dir))
    time.sleep(1.5)  # evaluations are made while no host runs
    assert len(records(run_dir)) == held
    block.unlink()
    assert trainer.wait(timeout=120) == 0, stderr_of(trainer)
    assert [r["epoch"] for r in records(run_dir)] == list(range(1, 13))
    assert summary(run_dir)["state"] == "finished"
    log = (run_dir / "run.json").read_text()
    assert json.loads(log)["state"] == "finished"


def test_a_lost_host_stops_the_run_when_the_script_chose_so(start_trainer, tmp_path, ltmlp):
    run_dir, result = tmp_path / "run", tmp_path / "result.json"
    trainer = start_trainer(str(run_dir), "--epochs", "200", "--on-host-loss", "stop", "--result", str(result))
    wait_until("the first epoch", lambda: len(records(run_dir)) >= 1)
    os.kill(ltmlp.status(run_dir)["pid"], signal.SIGKILL)
    assert trainer.wait(timeout=120) == 0, stderr_of(trainer)
    assert json.loads(result.read_text())["stopped"]
    end = summary(run_dir)
    assert end["state"] == "stopped" and "the host was lost" in end["reason"], end


def test_a_killed_run_resumes_from_its_checkpoint(start_trainer, tmp_path, ltmlp):
    run_dir = tmp_path / "run"
    first = start_trainer(str(run_dir), "--epochs", "200")
    wait_until("two epochs", lambda: len(records(run_dir)) >= 2)
    said = ltmlp("ctl", str(run_dir), "checkpoint")
    assert said.returncode == 0, said.stderr
    wait_until("an epoch after the checkpoint", lambda: len(records(run_dir)) >= 3)
    first.kill()
    first.wait()
    wait_until("the stopped folder", lambda: (run_dir / "summary.json").exists())
    import torch

    saved = torch.load(run_dir / "torch_checkpoint.pt", weights_only=False)
    kept = saved["epoch"]
    assert kept >= 2

    second = start_trainer(str(run_dir), "--epochs", str(kept + 2), "--resume", "true")
    assert second.wait(timeout=120) == 0, stderr_of(second)
    assert [r["epoch"] for r in records(run_dir)] == list(range(1, kept + 3))
    assert records(run_dir)[kept]["iteration"] > saved["iteration"]
    assert (run_dir / "metrics.jsonl.after-checkpoint").exists()
    assert summary(run_dir)["state"] == "finished"
