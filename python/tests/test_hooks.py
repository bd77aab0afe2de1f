"""The probe pass's statistics, per activation module type, against direct computation
(no host needed)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ltmlp.torch import probe
from ltmlp.torch.hooks import Hooks
from ltmlp.torch.stats import COLLAPSED_STD, SATURATED_SLOPE
from ltmlp.torch.transformed import TransformedTanh


def expected(x: torch.Tensor, y: torch.Tensor, slope: torch.Tensor) -> dict:
    """Per-unit figures computed directly: dim 1 is the unit, every other dim a sample."""

    def units(t: torch.Tensor) -> torch.Tensor:
        return t.double().movedim(1, 0).reshape(t.shape[1], -1)

    return {
        "mean_out": units(y).mean(1),
        "std_out": units(y).std(1, unbiased=False),
        "mean_slope": units(slope).mean(1),
        "std_pre": units(x).std(1, unbiased=False),
    }


def close(got: list, want: torch.Tensor) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want.tolist()):
        assert math.isclose(g, w, rel_tol=1e-9, abs_tol=1e-12), (got, want)


def run_one(model: nn.Module, x: torch.Tensor):
    _, measurement = Hooks(model).run(lambda: model(x))
    return measurement


@pytest.mark.parametrize(
    "module,kind,slope_of",
    [
        (nn.Tanh(), "tanh", lambda x: 1 - torch.tanh(x) ** 2),
        (nn.Sigmoid(), "sigmoid", lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x))),
        (nn.ReLU(inplace=True), "relu", lambda x: (x > 0).double()),
        (nn.GELU(), "gelu", None),
        (nn.GELU(approximate="tanh"), "gelu_tanh", None),
        (nn.SiLU(), "silu", None),
    ],
)
def test_each_activation_module_is_measured_per_unit(module, kind, slope_of):
    torch.manual_seed(1)
    linear = nn.Linear(5, 7).double()
    model = nn.Sequential(linear, module)
    x = torch.randn(50, 5, dtype=torch.float64) * 3
    pre = linear(x).detach()
    y = module(pre.clone()).detach()
    if slope_of is None:
        # The slope by autograd, not by the formula under test.
        p = pre.clone().requires_grad_(True)
        module(p.clone()).sum().backward()
        slope = p.grad
    else:
        slope = slope_of(pre)
    m = run_one(model, x)
    assert [s.name for s in m.layers] == ["1"]
    assert m.kinds["1"] == kind
    stats = m.layers[0]
    want = expected(pre, y, slope)
    for field in ("mean_out", "std_out", "mean_slope", "std_pre"):
        close(getattr(stats, field), want[field])


def test_convolution_channels_are_the_units_and_dead_relu_channels_are_found():
    torch.manual_seed(2)
    conv = nn.Conv2d(1, 4, 3).double()
    with torch.no_grad():
        conv.bias[0] = -100.0  # channel 0 never fires: dead
    model = nn.Sequential(conv, nn.ReLU())
    x = torch.randn(8, 1, 6, 6, dtype=torch.float64)
    pre = conv(x).detach()
    m = run_one(model, x)
    stats = m.layers[0]
    assert stats.units == 4
    want = expected(pre, F.relu(pre), (pre > 0).double())
    for field in ("mean_out", "std_out", "mean_slope", "std_pre"):
        close(getattr(stats, field), want[field])
    assert stats.collapsed == [True, False, False, False]
    assert stats.layer_event()["collapsed_fraction"] == 0.25
    assert stats.saturated == [False] * 4


def test_saturated_and_collapsed_units_follow_the_documented_thresholds():
    linear = nn.Linear(1, 3).double()
    with torch.no_grad():
        linear.weight[:] = torch.tensor([[20.0], [1.0], [0.001]], dtype=torch.float64)
        linear.bias.zero_()
    model = nn.Sequential(linear, nn.Tanh())
    x = torch.linspace(-1, 1, 101, dtype=torch.float64).reshape(-1, 1)
    stats = run_one(model, x).layers[0]
    # Unit 0: tanh(20x) is saturated almost everywhere: mean tanh' far below 0.1.
    assert stats.mean_slope[0] < SATURATED_SLOPE and stats.mean_slope[1] > SATURATED_SLOPE
    assert stats.saturated == [True, False, False]
    # Unit 2: input and output spread both below 0.1.
    assert stats.std_pre[2] < COLLAPSED_STD and stats.std_out[2] < COLLAPSED_STD
    assert stats.collapsed == [False, False, True]


def test_a_transformed_unit_has_its_slope_and_alpha_beta_gamma():
    torch.manual_seed(3)
    linear = nn.Linear(3, 4).double()
    unit = TransformedTanh(4, dtype=torch.float64)
    with torch.no_grad():
        # Values away from the neutral 0, 0, 1, as re-estimation leaves them.
        unit.alpha.copy_(torch.linspace(-0.5, 0.25, 4))
        unit.beta.copy_(torch.linspace(0.0, 0.3, 4))
        unit.gamma.copy_(torch.linspace(1.0, 2.0, 4))
    model = nn.Sequential(linear, unit)
    x = torch.randn(30, 3, dtype=torch.float64)
    pre = linear(x).detach()
    y = unit(pre).detach()
    slope = unit.gamma * (1 - torch.tanh(pre) ** 2 + unit.alpha)
    m = run_one(model, x)
    assert m.kinds["1"] == "transformed_tanh"
    stats = m.layers[0]
    want = expected(pre, y, slope)
    for field in ("mean_out", "std_out", "mean_slope", "std_pre"):
        close(getattr(stats, field), want[field])
    close(stats.alpha, unit.alpha)
    close(stats.gamma, unit.gamma)
    event = stats.layer_event()
    assert event["per_unit"]["beta"] == unit.beta.tolist()


def test_a_module_with_its_own_slope_is_measured_with_it():
    class Cube(nn.Module):
        def forward(self, x):
            return x**3

        def ltmlp_slope(self, x, y):
            return 3 * x * x

    model = nn.Sequential(nn.Linear(2, 3).double(), Cube())
    x = torch.randn(10, 2, dtype=torch.float64)
    pre = model[0](x).detach()
    stats = run_one(model, x).layers[0]
    close(stats.mean_slope, expected(pre, pre**3, 3 * pre * pre)["mean_slope"])


def test_functional_activations_are_measured_through_probe_and_reused_modules_per_call():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 5).double()
            self.b = nn.Linear(5, 5).double()
            self.act = nn.Tanh()

        def forward(self, x):
            h = self.act(self.a(x))
            z = self.b(h)
            g = probe("relu_b", F.relu(z), pre=z, kind="relu")
            return self.act(g)

    model = Net()
    x = torch.randn(20, 3, dtype=torch.float64)
    m = run_one(model, x)
    assert [s.name for s in m.layers] == ["act", "relu_b", "act#2"]
    z = model.b(torch.tanh(model.a(x))).detach()
    close(m.layers[1].mean_out, expected(z, F.relu(z), (z > 0).double())["mean_out"])
    close(m.layers[1].std_pre, expected(z, F.relu(z), (z > 0).double())["std_pre"])
    # Outside a probe pass the tap measures nothing and returns its tensor.
    t = torch.ones(2, 2)
    assert probe("x", t) is t


def test_hooks_are_attached_only_during_the_probe_pass():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    hooks = Hooks(model)
    hooks.run(lambda: model(torch.randn(3, 2)))
    assert not model[1]._forward_hooks and not model[1]._forward_pre_hooks
