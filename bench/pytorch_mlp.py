#!/usr/bin/env python3
"""PyTorch CPU reference for `ltmlp bench`: the same standard networks, the same synthetic data of
MNIST shape, the same timing (warm-up, then repetitions of a fixed number of examples, median).

Networks (f32, SGD with momentum 0.9, no input noise, like `ltmlp bench`):
  plain        784-800-800-10 tanh/softmax MLP, written as users would: nn.Sequential,
               CrossEntropyLoss, autograd, torch.optim.SGD.
  paper        784-800-800-10 with all shortcuts and transformed units y = γ(tanh x + αx + β);
               α, β, γ re-estimated on every minibatch from its own forward pass, with the
               function-preserving compensation of the other weights (PAPER.md §3.2-3.4), then
               backward and update with the compensated weights. Forward and backward are
               written with torch matrix products (no autograd), so the re-estimation reuses the
               forward pass as ltmlp does.
  paper-never  the same network, transformations never re-estimated.
  bn           784-800-800-10 with BatchNorm1d before every tanh (training mode), SGD as plain.
  adam         the plain network trained with torch.optim.Adam (betas 0.9, 0.999; eps 1e-8).
  muon         the plain network with Muon (Jordan 2024) on the two hidden layers' weight
               matrices (momentum 0.95, Nesterov, five quintic Newton-Schulz iterations, rate 0.02)
               and SGD with momentum for the biases and the output layer, as ltmlp's
               train.optimizer = "muon" (a short reference implementation below: `Muon`).
  kfac         the plain network with K-FAC as ltmlp's train.optimizer = "kfac" (`Kfac` below:
               A over [input | 1] and G over the layer's output gradients from hooks, refreshed
               every 10 steps, damped (0.1) Cholesky inverses every 100, momentum 0.9).
  autoencoder  784-1000-500-250-30-250-500-1000-784, linear bottleneck and output, shortcuts
               that do not skip the bottleneck, α β γ re-estimated every minibatch.

Usage: python3 bench/pytorch_mlp.py --threads 1 --batch 100 --batch 1000
"""

import argparse
import statistics
import time

import torch

INPUTS, CLASSES = 784, 10
GAMMA_EPSILON = 1e-4  # ε of the product form of γ (ltmlp's default)
WARMUP_STEPS = 3
LEARNING_RATE = 0.001
MOMENTUM = 0.9

NETS = {
    "plain": dict(hidden=[800, 800], shortcuts="adjacent", task="classify", every=False),
    "paper": dict(hidden=[800, 800], shortcuts="all", task="classify", every=True),
    "paper-never": dict(hidden=[800, 800], shortcuts="all", task="classify", every=False),
    "bn": dict(hidden=[800, 800], shortcuts="adjacent", task="classify", every=False),
    "adam": dict(hidden=[800, 800], shortcuts="adjacent", task="classify", every=False),
    "muon": dict(hidden=[800, 800], shortcuts="adjacent", task="classify", every=False),
    "kfac": dict(hidden=[800, 800], shortcuts="adjacent", task="classify", every=False),
    "autoencoder": dict(
        hidden=[1000, 500, 250, 30, 250, 500, 1000],
        shortcuts="all",
        task="autoencode",
        every=True,
        linear=[4],
        bottleneck=4,
    ),
}


class Topology:
    def __init__(self, spec):
        classify = spec["task"] == "classify"
        self.sizes = [INPUTS] + spec["hidden"] + [CLASSES if classify else INPUTS]
        self.depth = len(self.sizes) - 1
        linear = spec.get("linear", [])
        self.kinds = ["input"]
        self.kinds += ["linear" if l in linear else "tanh" for l in range(1, self.depth)]
        self.kinds.append("softmax" if classify else "linear")
        b = spec.get("bottleneck")
        self.conn = {
            (l, k)
            for l in range(1, self.depth + 1)
            for k in range(l)
            if (spec["shortcuts"] == "all" or k + 1 == l) and not (b and k < b < l)
        }

    def sources(self, l):
        return [k for k in range(l) if (l, k) in self.conn]

    def targets(self, l):
        return [m for m in range(l + 1, self.depth + 1) if (m, l) in self.conn]

    def transformed(self):
        return [l for l in range(1, self.depth) if self.kinds[l] == "tanh"]

    def flops(self, reestimate):
        """Matrix-multiply FLOPs (per example, per minibatch), counted as `ltmlp bench` does."""
        w = sum(self.sizes[l] * self.sizes[k] for (l, k) in self.conn)
        hidden_out = sum(
            self.sizes[m] * self.sizes[l] for l in range(1, self.depth) for m in self.targets(l)
        )
        per_batch = 0
        if reestimate:
            for l in self.transformed():
                for m in self.targets(l):
                    for k in self.sources(l):
                        per_batch += 2 * self.sizes[m] * self.sizes[l] * self.sizes[k]
        return 4 * w + 2 * hidden_out, per_batch


class TransformedNet:
    """All-to-all MLP with transformed tanh units, manual forward/backward and heavy-ball SGD."""

    def __init__(self, topo, every):
        self.t, self.every = topo, every
        g = torch.Generator().manual_seed(1)
        s = topo.sizes
        self.W, self.V = {}, {}
        for l, k in topo.conn:
            if k + 1 == l:
                lim = (6.0 / (s[l] + s[k])) ** 0.5
                w = (torch.rand(s[l], s[k], generator=g) * 2 - 1) * lim
            else:
                w = torch.zeros(s[l], s[k])
            self.W[(l, k)], self.V[(l, k)] = w, torch.zeros(s[l], s[k])
        self.b = [None] + [torch.rand(s[l], generator=g) - 0.5 for l in range(1, topo.depth + 1)]
        self.vb = [None] + [torch.zeros(s[l]) for l in range(1, topo.depth + 1)]
        self.alpha = {l: torch.zeros(s[l]) for l in topo.transformed()}
        self.beta = {l: torch.zeros(s[l]) for l in topo.transformed()}
        self.gamma = {l: torch.ones(s[l]) for l in topo.transformed()}

    def forward(self, x0):
        t = self.t
        xs, ts, ys = [None], [None], [x0]
        for l in range(1, t.depth + 1):
            x = None
            for k in t.sources(l):
                if x is None:
                    x = torch.addmm(self.b[l], ys[k], self.W[(l, k)].T)
                else:
                    x.addmm_(ys[k], self.W[(l, k)].T)
            th = None
            if t.kinds[l] == "tanh":
                th = torch.tanh(x)
                y = (th + self.alpha[l] * x + self.beta[l]) * self.gamma[l]
            elif t.kinds[l] == "softmax":
                y = torch.softmax(x, dim=1)
            else:
                y = x
            xs.append(x)
            ts.append(th)
            ys.append(y)
        return xs, ts, ys

    def set_alpha_beta(self, l, a, b):
        t, g = self.t, self.gamma[l]
        da, db = (self.alpha[l] - a) * g, (self.beta[l] - b) * g
        shift = da * self.b[l] + db
        for m in t.targets(l):
            w_ml = self.W[(m, l)]
            self.b[m].addmv_(w_ml, shift)
            scaled = w_ml * da
            for k in t.sources(l):
                self.W[(m, k)].addmm_(scaled, self.W[(l, k)])
        self.alpha[l], self.beta[l] = a, b

    def set_gamma(self, l, g):
        ratio = self.gamma[l] / g
        for m in self.t.targets(l):
            self.W[(m, l)].mul_(ratio)
        self.gamma[l] = g

    def reestimate(self, xs, ts, ys):
        """α, β (layer order), then γ, from this batch; compensates and refreshes the outputs."""
        layers = self.t.transformed()
        for l in layers:
            x, th = xs[l], ts[l]
            a = -(1 - th * th).mean(0)
            b = -(th.mean(0) + a * x.mean(0))
            self.set_alpha_beta(l, a, b)
        for l in layers:
            x, th = xs[l], ts[l]
            a, b = self.alpha[l], self.beta[l]
            m2 = (th + a * x + b).square().mean(0)
            d2 = (1 - th * th + a).square().mean(0)
            self.set_gamma(l, (m2 * d2 + GAMMA_EPSILON) ** -0.25)
        for l in layers:
            ys[l] = (ts[l] + self.alpha[l] * xs[l] + self.beta[l]) * self.gamma[l]

    def step(self, x0, target):
        t = self.t
        xs, ts, ys = self.forward(x0)
        if self.every:
            self.reestimate(xs, ts, ys)
        rows = x0.shape[0]
        delta = [None] * (t.depth + 1)
        out = ys[t.depth]
        if t.kinds[t.depth] == "softmax":
            d = out.clone()
            d[torch.arange(rows), target] -= 1
        else:
            d = out - target
        delta[t.depth] = d
        for l in range(t.depth - 1, 0, -1):
            d = None
            for m in t.targets(l):
                if d is None:
                    d = delta[m] @ self.W[(m, l)]
                else:
                    d.addmm_(delta[m], self.W[(m, l)])
            if t.kinds[l] == "tanh":
                d.mul_((1 - ts[l] * ts[l] + self.alpha[l]) * self.gamma[l])
            delta[l] = d
        for l, k in t.conn:
            v = self.V[(l, k)]
            v.addmm_(delta[l].T, ys[k], beta=MOMENTUM, alpha=1.0 / rows)
            self.W[(l, k)].add_(v, alpha=-LEARNING_RATE * 0.5 ** (l - k - 1))
        for l in range(1, t.depth + 1):
            vb = self.vb[l]
            vb.mul_(MOMENTUM).add_(delta[l].sum(0), alpha=1.0 / rows)
            self.b[l].add_(vb, alpha=-LEARNING_RATE)


# Muon's quintic Newton-Schulz coefficients and defaults (Jordan 2024; ltmlp's src/train/muon.rs).
NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)
NEWTON_SCHULZ_STEPS = 5
MUON_RATE, MUON_MOMENTUM = 0.02, 0.95


def newton_schulz(g):
    """The approximate orthogonal polar factor of g: five quintic iterations on g/|g|_F."""
    a, b, c = NEWTON_SCHULZ
    x = g / (g.norm() + 1e-7)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(NEWTON_SCHULZ_STEPS):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Muon on 2-D weight matrices: m <- mu*m + g; W -= lr*sqrt(max(1, rows/cols))*NS(g + mu*m)."""

    def __init__(self, params, lr=MUON_RATE, momentum=MUON_MOMENTUM):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            mu = group["momentum"]
            for p in group["params"]:
                state = self.state[p]
                m = state.setdefault("momentum", torch.zeros_like(p))
                m.mul_(mu).add_(p.grad)
                update = newton_schulz(p.grad + mu * m)
                scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
                p.add_(update, alpha=-group["lr"] * scale)


KFAC_DAMPING, KFAC_DECAY, KFAC_STATS_EVERY, KFAC_UPDATE_EVERY = 0.1, 0.95, 10, 100


class Kfac:
    """K-FAC on nn.Linear layers: (G + sqrt(l) I)^-1 [dW | db] (A + sqrt(l) I)^-1 with momentum."""

    def __init__(self, linears, lr=LEARNING_RATE):
        self.linears, self.lr, self.steps, self.state = linears, lr, 0, {}
        self.inputs, self.errors = {}, {}
        for m in linears:
            m.register_forward_hook(lambda m, i, o: self.inputs.__setitem__(m, i[0].detach()))
            m.register_full_backward_hook(
                lambda m, gi, go: self.errors.__setitem__(m, go[0].detach())
            )

    def zero_grad(self, set_to_none=True):
        for m in self.linears:
            m.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self):
        stats = self.steps % KFAC_STATS_EVERY == 0
        invert = self.steps % KFAC_UPDATE_EVERY == 0
        for m in self.linears:
            x = self.inputs[m]
            rows = x.size(0)
            a = torch.cat([x, torch.ones(rows, 1)], 1)
            d = self.errors[m] * rows  # per-example errors of the mean loss
            st = self.state.setdefault(m, {})
            if stats:
                for key, f in (("A", a.T @ a / rows), ("G", d.T @ d / rows)):
                    st[key] = f if key not in st else KFAC_DECAY * st[key] + (1 - KFAC_DECAY) * f
            if invert:
                for key in ("A", "G"):
                    damped = st[key] + KFAC_DAMPING**0.5 * torch.eye(st[key].size(0))
                    st[key + "i"] = torch.cholesky_inverse(torch.linalg.cholesky(damped))
            grad = torch.cat([m.weight.grad, m.bias.grad[:, None]], 1)
            step = st["Gi"] @ grad @ st["Ai"]
            v = st.setdefault("v", torch.zeros_like(step))
            v.mul_(MOMENTUM).add_(step)
            m.weight.add_(v[:, :-1], alpha=-self.lr)
            m.bias.add_(v[:, -1], alpha=-self.lr)
        self.steps += 1


def plain_autograd(norm=False, adam=False, muon=False, kfac=False):
    """The networks written as users would: nn.Sequential, CrossEntropyLoss, autograd."""
    layers, width = [], INPUTS
    for _ in range(2):
        layers.append(torch.nn.Linear(width, 800))
        if norm:
            layers.append(torch.nn.BatchNorm1d(800))
        layers.append(torch.nn.Tanh())
        width = 800
    layers.append(torch.nn.Linear(width, CLASSES))
    model = torch.nn.Sequential(*layers)
    if adam:
        opts = [torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)]
    elif kfac:
        opts = [Kfac([m for m in model if isinstance(m, torch.nn.Linear)])]
    elif muon:
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        hidden = [m.weight for m in linears[:-1]]
        rest = [m.bias for m in linears[:-1]] + list(linears[-1].parameters())
        opts = [
            Muon(hidden),
            torch.optim.SGD(rest, lr=LEARNING_RATE, momentum=MOMENTUM),
        ]
    else:
        opts = [torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM)]
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        for opt in opts:
            opt.step()

    return step


# The networks trained with autograd (the others are written out by hand in TransformedNet).
AUTOGRAD = {
    "plain": lambda: plain_autograd(),
    "bn": lambda: plain_autograd(norm=True),
    "adam": lambda: plain_autograd(adam=True),
    "muon": lambda: plain_autograd(muon=True),
    "kfac": lambda: plain_autograd(kfac=True),
}


def measure(name, batch, examples, repeats):
    spec = NETS[name]
    topo = Topology(spec)
    g = torch.Generator().manual_seed(2012)
    data = torch.rand(4 * batch, INPUTS, generator=g)
    labels = torch.arange(4 * batch) % CLASSES
    classify = spec["task"] == "classify"
    if name in AUTOGRAD:
        step = AUTOGRAD[name]()
    else:
        step = TransformedNet(topo, spec["every"]).step
    per_example, per_batch = topo.flops(spec["every"])
    if name == "kfac":
        # ltmlp's kfac_flops: the step every step, statistics and inverses amortised.
        for l in range(1, topo.depth + 1):
            n, d = topo.sizes[l], sum(topo.sizes[k] for k in topo.sources(l)) + 1
            per_batch += 2 * n * n * d + 2 * n * d * d
            per_batch += 2 * batch * (d * d + n * n) / KFAC_STATS_EVERY
            per_batch += (d**3 + n**3) / KFAC_UPDATE_EVERY
    if name == "muon":
        # Newton-Schulz per hidden matrix n x m (n <= m): X.X^T 2n^2m, A.A 2n^3, (.)X 2n^2m.
        for l in range(1, topo.depth):
            n, m = sorted((topo.sizes[l], sum(topo.sizes[k] for k in topo.sources(l))))
            per_batch += NEWTON_SCHULZ_STEPS * (4 * n * n * m + 2 * n**3)
    batches = [
        (data[i : i + batch], labels[i : i + batch] if classify else data[i : i + batch])
        for i in range(0, 4 * batch, batch)
    ]
    with torch.no_grad() if name not in AUTOGRAD else torch.enable_grad():
        for i in range(WARMUP_STEPS):
            step(*batches[i % 4])
        steps = max(1, -(-examples // batch))
        times = []
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            for i in range(steps):
                step(*batches[i % 4])
            times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    rate = steps * batch / seconds
    gflops = steps * (per_example * batch + per_batch) / seconds / 1e9
    return rate, gflops


def peak_gflops(size=2048, repeats=5):
    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(f):
    started = time.perf_counter()
    f()
    return time.perf_counter() - started


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, action="append")
    p.add_argument("--net", action="append", choices=list(NETS))
    p.add_argument("--examples", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    peak = peak_gflops()
    print(f"pytorch {torch.__version__}: f32, {args.threads} thread(s), CPU")
    print(f"peak: {peak:.1f} GFLOP/s (2048×2048×2048 product, best of 5)")
    print(f"{'network':<12} {'batch':>6} {'ex/s':>10} {'GFLOP/s':>8} {'%peak':>7}")
    for batch in args.batch or [100, 1000]:
        for name in args.net or list(NETS):
            rate, gflops = measure(name, batch, args.examples, args.repeats)
            print(f"{name:<12} {batch:>6} {rate:>10.0f} {gflops:>8.1f} {100 * gflops / peak:>6.0f}%")


if __name__ == "__main__":
    main()
