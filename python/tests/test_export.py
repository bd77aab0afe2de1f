"""Weights both ways in the `ltmlp export` format: TransformedMLP.from_export reads a file that
`ltmlp export` wrote (a tiny preset trained here for one epoch) and computes ltmlp's own outputs
(`ltmlp eval --dump-outputs`); `.export` writes a file equal to it, tensor by tensor, that
scripts/check_export.py and scripts/check_export_torch.py accept. Bad files get one-line
errors that name the file.

The binary: conftest's `ltmlp_bin` ($LTMLP_BIN, else <repo>/target/release/ltmlp); skipped,
saying so, without it.
"""

import os
import subprocess
import sys

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")

from ltmlp.torch.export import ExportError, read_safetensors, write_safetensors  # noqa: E402
from ltmlp.torch.transformed import TransformedMLP  # noqa: E402

from conftest import REPO  # noqa: E402


@pytest.fixture(scope="module")
def exported(ltmlp_bin, tmp_path_factory):
    """(model.safetensors, outputs.npz) of a tiny abg run trained for one epoch."""
    run = tmp_path_factory.mktemp("export") / "run"
    ltmlp = ltmlp_bin
    subprocess.run(
        [ltmlp, "run", os.path.join(REPO, "presets", "tiny.toml"), "--variant", "abg",
         "--set", "train.epochs=1", "--out", str(run)],
        check=True, capture_output=True, timeout=120,
    )
    subprocess.run([ltmlp, "export", str(run)], check=True, capture_output=True, timeout=120)
    outputs = run / "outputs.npz"
    subprocess.run([ltmlp, "eval", str(run), "--dump-outputs", str(outputs)], check=True, capture_output=True, timeout=120)
    return run / "model.safetensors", outputs


def test_from_export_computes_ltmlps_outputs(exported):
    model_path, outputs = exported
    net = TransformedMLP.from_export(str(model_path))
    dump = np.load(outputs)
    x = net.preprocess(torch.from_numpy(dump["inputs"]).double())
    with torch.no_grad():
        mine = net.outputs(x).numpy()
    assert np.abs(mine - dump["outputs"]).max() < 1e-12
    assert net.sizes == [49, 16, 16, 10] and net.transforms_on() == {"alpha": True, "beta": True, "gamma": True}
    assert (net.unit(1).gamma != 1).any()
    assert net.classes == list(range(10))


def test_export_round_trip_is_exact_and_the_scripts_accept_it(exported, tmp_path):
    model_path, outputs = exported
    net = TransformedMLP.from_export(str(model_path))
    mine = tmp_path / "mine.safetensors"
    net.export(str(mine))
    theirs, their_meta = read_safetensors(str(model_path))
    ours, our_meta = read_safetensors(str(mine))
    assert sorted(theirs) == sorted(ours)
    for name in theirs:
        assert np.array_equal(theirs[name], ours[name]), name
    for key in ("format", "sizes", "kinds", "connections", "task"):
        assert our_meta[key] == their_meta[key], key
    for script in ("check_export.py", "check_export_torch.py"):
        done = subprocess.run(
            [sys.executable, os.path.join(REPO, "scripts", script), str(mine), str(outputs)],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0 and "OK" in done.stdout, (script, done.stdout, done.stderr)


def test_a_network_made_in_python_goes_to_the_scripts_format(tmp_path):
    net = TransformedMLP([5, 4, 3, 2], variant="abg", dtype=torch.float64, seed=2)
    x = torch.randn(30, 5, dtype=torch.float64)
    net.reestimate(x)
    path = tmp_path / "net.safetensors"
    net.export(str(path))
    again = TransformedMLP.from_export(str(path))
    with torch.no_grad():
        assert torch.equal(net.outputs(x), again.outputs(x))
    assert again.connections == net.connections and again.transforms_on() == net.transforms_on()


def test_bad_files_are_refused_with_the_file_named(tmp_path):
    short = tmp_path / "short.safetensors"
    short.write_bytes(b"abc")
    with pytest.raises(ExportError, match="short.safetensors: too short"):
        TransformedMLP.from_export(str(short))
    wrong = tmp_path / "wrong.safetensors"
    write_safetensors(str(wrong), {"x": np.zeros(3)}, {"format": "other"})
    with pytest.raises(ExportError, match="wrong.safetensors: metadata format is 'other'"):
        TransformedMLP.from_export(str(wrong))
    net = TransformedMLP([3, 2, 2], variant="none", dtype=torch.float64)
    path = tmp_path / "cut.safetensors"
    net.export(str(path))
    tensors, meta = read_safetensors(str(path))
    del tensors["layer2.from0.weight"]
    write_safetensors(str(path), tensors, meta)
    with pytest.raises(ExportError, match=r"cut.safetensors: tensor layer2.from0.weight is missing"):
        TransformedMLP.from_export(str(path))
    huge = tmp_path / "huge.safetensors"
    huge.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(ExportError, match="huge.safetensors: header length"):
        TransformedMLP.from_export(str(huge))
    odd = tmp_path / "odd.safetensors"
    header = b'{"w":{"dtype":"F64","shape":[2]}}'
    odd.write_bytes(len(header).to_bytes(8, "little") + header + bytes(16))
    with pytest.raises(ExportError, match="odd.safetensors: tensor w: the header needs data_offsets"):
        read_safetensors(str(odd))
