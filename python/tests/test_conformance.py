"""Conformance with the Rust engine: a native run of presets/tiny.toml traced with
`ltmlp run --trace`, retraced by TransformedMLP + ltmlp.torch.SGD in float64 (input noise off,
as the preset has it), gives the same loss and alpha, beta, gamma at every one of the first 100
steps (1e-9 relative) and the same metrics.jsonl (losses, errors, alpha beta gamma ranges) after
three epochs (1e-6 relative), for none, ab and abg, with the preset's re-estimation on a sample
with re-estimation on every minibatch and with the paper rule (its epoch-end update on the
training set), with the preset's plain SGD and with the authors' whole recipe (momentum, the
paper schedule, bias momentum, weight decay), and on CUDA in float64 where there is a GPU.

The binary: conftest's `ltmlp_bin` ($LTMLP_BIN, else <repo>/target/release/ltmlp); the test
is skipped, saying so, without it.
"""

import json
import subprocess

import pytest

pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

from ltmlp.idx import prepare_from_config  # noqa: E402
from ltmlp.trace import Retrace, Trace, relative_gap  # noqa: E402

from conftest import REPO  # noqa: E402

STEPS = 100
STEP_BOUND = 1e-9
METRICS_BOUND = 1e-6
METRICS_EPOCHS = 3


#: The authors' recipe beyond the tiny preset's plain SGD: momentum with its ramp and the rate's
#: decay (the paper schedule, burn-in shortened to 4 epochs), the biases' own momentum, weight
#: decay.
RECIPE = [
    "train.learning_rate=0.3", "train.momentum=0.9", "train.schedule=paper",
    "train.momentum_initial=0.5", "train.burn_in_epochs=4", "train.rate_decay=0.8",
    "train.bias_momentum=0.7", "train.weight_decay=0.001",
]


PAPER = ["transforms.paper_threshold=50"]


def native_run(binary, tmp_path, variant, policy, settings=()):
    """A traced run of the tiny preset: 10 epochs of 10 minibatches."""
    out, trace = tmp_path / "run", tmp_path / "trace.jsonl"
    command = [
        binary, "run", str(REPO / "presets" / "tiny.toml"), "--variant", variant,
        "--out", str(out), "--trace", str(trace), "--set", "train.epochs=10",
        "--set", f"transforms.policy={policy}",
    ]
    for setting in settings:
        command += ["--set", setting]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return Trace(str(trace)), [m for m in metrics if "train_loss" in m]


def metrics_gaps(native, ours):
    """The largest relative gap of each compared quantity of one epoch's metrics."""
    gaps = {}
    for key in ("train_loss", "train_error", "validation_loss", "validation_error", "test_loss", "test_error"):
        gaps[key] = relative_gap(native[key], ours[key])
    for theirs, mine in zip(native["layers"], ours["layers"]):
        assert theirs["layer"] == mine["layer"]
        for name in ("alpha", "beta", "gamma"):
            for end in ("min", "max"):
                key = f"{name}.{end}"
                gaps[key] = max(gaps.get(key, 0.0), relative_gap(theirs[name][end], mine[name][end]))
    return gaps


NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize(
    "variant,policy,device,settings",
    [
        ("none", "sample", "cpu", ()),
        ("ab", "sample", "cpu", ()),
        ("abg", "sample", "cpu", ()),
        ("ab", "every", "cpu", ()),
        ("abg", "every", "cpu", ()),
        ("abg", "every", "cpu", RECIPE),
        # The paper rule with its threshold at 50 % validation error: every minibatch in the
        # first epoch, then one re-estimation on the whole training set per epoch.
        ("ab", "paper", "cpu", PAPER),
        pytest.param("abg", "every", "cuda", (), marks=NO_CUDA),
    ],
    ids=lambda v: "recipe" if v is RECIPE else "threshold50" if v is PAPER else None,
)
def test_retrace_matches_the_native_run(ltmlp_bin, tmp_path, variant, policy, device, settings):
    trace, metrics = native_run(ltmlp_bin, tmp_path, variant, policy, settings)
    data = prepare_from_config(trace.config, str(REPO))
    # The same training inputs as the native run's.
    x = data.train[0]
    assert x.shape == (trace.header["data"]["train"], trace.header["data"]["input_dim"])
    assert relative_gap(float((x * x).sum()), trace.header["data"]["train_sum_of_squares"]) < 1e-12
    retrace = Retrace(trace, data, device=device)
    assert len(trace.steps) >= STEPS
    worst = {"loss": 0.0, "alpha": 0.0, "beta": 0.0, "gamma": 0.0}
    per_epoch = trace.header["iterations_per_epoch"]
    for i, line in enumerate(trace.steps[: max(STEPS, METRICS_EPOCHS * per_epoch)]):
        assert line["step"] == i
        ours = retrace.step(line)
        assert ours["reestimated"] == line["reestimated"], f"step {i}"
        # Equal but for the last bit (Rust's powi and Python's ** round the decay differently).
        for key in ("rate", "momentum", "bias_momentum"):
            assert relative_gap(ours[key], line[key]) < 1e-15, (i, key, ours[key], line[key])
        assert ours["errors"] == line["errors"], f"step {i}"
        for key in worst:
            worst[key] = max(worst[key], relative_gap(line[key], ours[key]))
    print(f"{variant}/{policy}/{device}: largest relative gap over {STEPS} steps: {worst}")
    assert all(gap <= STEP_BOUND for gap in worst.values()), worst
    for epoch in range(METRICS_EPOCHS):
        gaps = metrics_gaps(metrics[epoch], retrace.evaluations[epoch])
        print(f"{variant}/{policy}/{device}: epoch {epoch + 1} metrics gap {max(gaps.values()):.2e}")
        assert max(gaps.values()) <= METRICS_BOUND, (epoch + 1, gaps)


def test_bad_idx_files_are_refused_naming_the_file(tmp_path):
    from ltmlp.idx import IMAGES_MAGIC, IdxError, prepare, read_idx

    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes((0x801).to_bytes(4, "big") + bytes(12))
    with pytest.raises(IdxError, match="train-images-idx3-ubyte: bad magic number 0x00000801"):
        read_idx(str(bad), IMAGES_MAGIC)
    bad.write_bytes(IMAGES_MAGIC.to_bytes(4, "big") + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") + bytes(5))
    with pytest.raises(IdxError, match="truncated: the header promises 8 bytes of data but the file holds 5"):
        read_idx(str(bad), IMAGES_MAGIC)
    with pytest.raises(IdxError, match="neither train-labels-idx1-ubyte nor train-labels-idx1-ubyte.gz is there"):
        prepare(str(tmp_path))
    with pytest.raises(IdxError, match="data.downsample = 5 does not divide the 28x28 images"):
        prepare(str(REPO / "assets" / "mnist-mini"), downsample=5)
