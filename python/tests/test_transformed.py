"""TransformedMLP: every re-estimation and switch keeps the network function (1e-10 in
float64, the Rust engine's bound), gradients agree with finite differences, and
ltmlp.torch.SGD follows the authors' recipe."""

import pytest

torch = pytest.importorskip("torch")

from ltmlp.torch.sgd import SGD  # noqa: E402
from ltmlp.torch.transformed import TransformedMLP, TransformError  # noqa: E402

BOUND = 1e-10


def trained_net(variant="abg", sizes=(6, 5, 4, 3), steps=5, **kw):
    """A network moved away from its initialisation (shortcuts non-zero, alpha beta gamma set)."""
    torch.manual_seed(0)
    net = TransformedMLP(list(sizes), variant=variant, dtype=torch.float64, seed=3, **kw)
    opt = SGD(net, lr=0.3, momentum=0.5)
    x = torch.randn(40, sizes[0], dtype=torch.float64)
    labels = torch.randint(0, sizes[-1], (40,))
    for _ in range(steps):
        net.reestimate(x)
        loss = torch.nn.functional.cross_entropy(net(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, x


def largest_change(net, x, change):
    with torch.no_grad():
        before = net.outputs(x)
        change()
        after = net.outputs(x)
    return (before - after).abs().max().item()


@pytest.mark.parametrize("variant", ["ab", "abg"])
def test_reestimation_keeps_the_function(variant):
    net, x = trained_net(variant)
    probe = torch.randn(30, 6, dtype=torch.float64) * 2
    for _ in range(3):
        batch = torch.randn(25, 6, dtype=torch.float64)
        assert largest_change(net, probe, lambda: net.reestimate(batch)) < BOUND
    u = net.unit(1)
    assert u.alpha.abs().max() > 0.1 and u.beta.abs().max() > 0.01
    if variant == "abg":
        assert (u.gamma - 1).abs().max() > 0.1


def test_reestimation_sets_the_closed_forms():
    """After re-estimating on a batch: mean slope and mean output zero per unit, and
    <f^2><f'^2> = 1 (up to epsilon) for gamma."""
    net, _ = trained_net("abg")
    batch = torch.randn(200, 6, dtype=torch.float64)
    net.reestimate(batch, keep_for_step=False)
    xs = net.pre_activations(batch)
    for l in net.transformed_layers():
        u, x = net.unit(l), xs[l]
        out, slope = u(x), u.ltmlp_slope(x)
        assert out.mean(0).abs().max() < 1e-12
        assert slope.mean(0).abs().max() < 1e-12
        product = (out**2).mean(0) * (slope**2).mean(0)
        g4 = u.gamma**4
        # gamma^-4 = m2 d2 + eps and product = gamma^4 m2 d2, so product = 1 - eps gamma^4.
        assert torch.allclose(product, 1 - net.gamma_epsilon * g4, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["alpha", "beta", "gamma"])
def test_every_switch_keeps_the_function(name):
    net, x = trained_net("abg")
    probe = torch.randn(30, 6, dtype=torch.float64)
    assert largest_change(net, probe, lambda: net.switch(name, False)) < BOUND
    assert not net.transforms_on()[name]
    assert largest_change(net, probe, lambda: net.switch(name, True, batch=x)) < BOUND
    assert net.transforms_on()[name]


def test_switches_from_none_and_back_keep_the_function():
    net, x = trained_net("none")
    probe = torch.randn(30, 6, dtype=torch.float64)
    for name in ("gamma", "alpha", "beta"):
        assert largest_change(net, probe, lambda: net.switch(name, True, batch=x)) < BOUND
    for name in ("beta", "gamma", "alpha"):
        assert largest_change(net, probe, lambda: net.switch(name, False)) < BOUND
    for u in net.units.values():
        assert (u.alpha == 0).all() and (u.beta == 0).all() and (u.gamma == 1).all()


def test_autoencoder_mask_keeps_the_function():
    net, x = trained_net("abg", sizes=(6, 5, 2, 5, 6), output="linear", bottleneck=2)
    assert (3, 1) not in net.connections and (3, 0) not in net.connections
    probe = torch.randn(30, 6, dtype=torch.float64)
    assert largest_change(net, probe, lambda: net.reestimate(x)) < BOUND


def test_alpha_without_shortcuts_is_refused():
    with pytest.raises(TransformError, match='shortcuts="all"'):
        TransformedMLP([4, 3, 3, 2], shortcuts="adjacent", variant="ab")
    net = TransformedMLP([4, 3, 3, 2], shortcuts="adjacent", variant="none", dtype=torch.float64)
    assert net.transform_toggles() == ("beta", "gamma")
    with pytest.raises(TransformError, match="needs a shortcut from layer 0 to layer 2"):
        net.switch("alpha", True)
    x = torch.randn(10, 4, dtype=torch.float64)
    assert largest_change(net, x, lambda: net.switch("beta", True, batch=x)) < BOUND
    assert TransformedMLP([4, 2], variant="none").transform_toggles() == ()


def test_gradients_match_finite_differences():
    net, x = trained_net("abg", steps=2)
    labels = torch.tensor([i % 3 for i in range(x.shape[0])])
    params = list(net.parameters())
    grads = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x), labels), params)
    h = 1e-6
    with torch.no_grad():
        for p, g in zip(params, grads):
            flat, gflat = p.view(-1), g.view(-1)
            for i in range(0, flat.numel(), max(1, flat.numel() // 5)):
                old = flat[i].item()
                flat[i] = old + h
                up = torch.nn.functional.cross_entropy(net(x), labels).item()
                flat[i] = old - h
                down = torch.nn.functional.cross_entropy(net(x), labels).item()
                flat[i] = old
                assert abs((up - down) / (2 * h) - gflat[i].item()) < 1e-7


def test_reused_pre_activations_give_the_same_gradient():
    """The training forward right after `reestimate(x)` reuses its pre-activations; its loss
    and gradient equal a fresh pass's."""
    net, x = trained_net("abg", steps=2)
    labels = torch.tensor([i % 3 for i in range(x.shape[0])])
    net.reestimate(x)
    assert net._cache is not None
    cached_loss = torch.nn.functional.cross_entropy(net(x), labels)
    assert net._cache is None
    cached = torch.autograd.grad(cached_loss, list(net.parameters()))
    fresh_loss = torch.nn.functional.cross_entropy(net(x), labels)
    fresh = torch.autograd.grad(fresh_loss, list(net.parameters()))
    assert abs(cached_loss.item() - fresh_loss.item()) < 1e-12
    for a, b in zip(cached, fresh):
        assert (a - b).abs().max() < 1e-12
    # A parameter changed after the re-estimation: the kept pass is not used.
    net.reestimate(x)
    with torch.no_grad():
        net.bias(1).add_(1.0)
    assert net._take_cache(x) is None


def test_sgd_scales_shortcuts_and_keeps_bias_momentum():
    """Two steps with a gradient of ones (as the Rust optimizer test): velocities 1 + mu,
    weights moved by eta s (1 + v), the shortcut over one layer at half the step."""
    net = TransformedMLP([3, 2, 2], variant="none", dtype=torch.float64)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
    opt = SGD(net, lr=0.1, momentum=0.5, bias_momentum=0.9)
    for _ in range(2):
        for p in net.parameters():
            p.grad = torch.ones_like(p)
        opt.step()
    assert abs(net.bias(1)[0].item() + 0.1 * 2.9) < 1e-12
    assert abs(net.weight(2, 1)[0, 0].item() + 0.1 * 2.5) < 1e-12
    assert abs(net.weight(2, 0)[0, 0].item() + 0.1 * 0.5 * 2.5) < 1e-12


def test_paper_schedule():
    net = TransformedMLP([3, 2, 2], variant="none")
    opt = SGD(net, lr=0.4, momentum=0.9, schedule="paper", momentum_initial=0.5, burn_in_epochs=10, rate_decay=0.9)
    assert opt.momentum() == 0.5 and opt.learning_rate() == 0.4
    for _ in range(5):
        opt.end_epoch()
    assert abs(opt.momentum() - 0.7) < 1e-12
    for _ in range(5):
        opt.end_epoch()
    assert opt.momentum() == 0.9 and abs(opt.learning_rate() - 0.36) < 1e-12
    opt.end_epoch()
    assert abs(opt.learning_rate() - 0.4 * 0.81) < 1e-12
    # The rate set is the rate from now on (shown on the groups), and the decay goes on from it.
    opt.set_learning_rate(1.0)
    assert abs(opt.learning_rate() - 1.0) < 1e-12 and abs(opt.param_groups[0]["lr"] - 1.0) < 1e-12
    opt.end_epoch()
    assert abs(opt.learning_rate() - 0.9) < 1e-12
    opt.set_momentum(0.3)
    assert opt.momentum() == 0.3


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_and_float64_and_cuda_when_present(dtype):
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        net = TransformedMLP([8, 6, 6, 3], variant="abg", dtype=dtype, device=device, seed=1)
        x = torch.randn(20, 8, dtype=dtype, device=device)
        before = net.outputs(x).detach()
        net.reestimate(x)
        after = net.outputs(x).detach()
        bound = 1e-10 if dtype == torch.float64 else 1e-5
        assert (before - after).abs().max().item() < bound
        assert net.unit(1).gamma.dtype == dtype and net.unit(1).gamma.device.type == device


def test_state_dict_keeps_the_transformations_and_their_switches():
    net, x = trained_net("abg")
    net.switch("gamma", False)
    copy = TransformedMLP(list(net.sizes), variant="none", dtype=torch.float64)
    copy.load_state_dict(net.state_dict())
    assert copy.transforms_on() == {"alpha": True, "beta": True, "gamma": False}
    with torch.no_grad():
        assert torch.equal(copy.outputs(x), net.outputs(x))


def test_compensation_runs_in_full_precision_and_restores_the_setting():
    """TF32 allowed (precision "high"): the compensation still keeps the float32 function, and
    the user's setting is back afterwards (on a CPU, where TF32 does not apply, only the
    latter can fail)."""
    saved = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")
        net = TransformedMLP([8, 6, 6, 3], variant="ab", seed=1)
        x = torch.randn(20, 8)
        before = net.outputs(x).detach()
        net.reestimate(x)
        assert (net.outputs(x).detach() - before).abs().max().item() < 1e-5
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(saved)
