"""``make bench`` section 5: the levers that buy compute on a small machine, each as a ratio to the
plain fp32 loop measured in the same run (issue 11, deliverable 4).

* precision: one PGD-10 adversarial training step (LeNet, batch 100) in fp32, fp32 + channels_last,
  bf16 autocast, bf16 autocast + channels_last; then a whole :func:`~landscape_core.training.train`
  epoch in fp32 and in the ``bf16`` precision the study uses (autocast + channels_last);
* ``torch.compile`` of the network (compile time reported apart, steady state compared);
* ``torch.func``: several LeNets of one architecture trained together (``stack_module_state``,
  ``functional_call``, ``vmap``), against a loop over the models;
* evaluation: what the Table 1 attacks cost per test image, against a training step per image.

Every function returns plain numbers; :mod:`.bench` prints them.
"""
from __future__ import annotations

import copy
import tempfile

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, stack_module_state, vmap

from ..attacks import AttackSpec, make_attack, pgd
from ..core.precision import autocast
from ..data import DatasetSpec, load_data
from ..models import ModelSpec, build_model
from ..training import TrainSpec, train


def _lenet(width: int, seed: int, device):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model("lenet", width, in_shape=(1, 28, 28), num_classes=10).to(device)


def _mnist_batch(n: int, device):
    split = load_data(DatasetSpec(name="mnist5k", n_train=max(n, 100)))[0]
    return split.x[:n].to(device), split.y[:n].to(device)


def training_step(model, opt, x, y, *, eps: float, steps: int, precision: str, device) -> None:
    """One adversarial training step as :func:`train` makes it: PGD on the input, one Adam update."""
    gen = torch.Generator(device=device).manual_seed(0)
    with autocast(precision, device):
        x_adv = pgd(model, x, y, eps, steps=steps, step_ratio=0.25, generator=gen)
        loss = F.cross_entropy(model(x_adv), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def precision_steps(timer, width: int = 16, steps: int = 10, device="cpu") -> dict:
    """Median seconds of one training step per variant; keys are the variant names."""
    x, y = _mnist_batch(100, device)
    variants = {"fp32": ("fp32", False), "fp32 + channels_last": ("fp32", True),
                "bf16 autocast": ("bf16", False), "bf16 autocast + channels_last": ("bf16", True)}
    fns = []
    for name, (precision, cl) in variants.items():
        fmt = torch.channels_last if cl else torch.contiguous_format
        model = _lenet(width, 0, device).to(memory_format=fmt)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        xb = x.contiguous(memory_format=fmt)
        fns.append(lambda m=model, o=opt, xb=xb, p=precision: training_step(m, o, xb, y, eps=0.3, steps=steps,
                                                                          precision=p, device=device))
    times = timer(fns, [f"step lenet-{width} {n}" for n in variants])
    return dict(zip(variants, times))


def precision_epochs(timer, width: int = 16, n_train: int = 1000, steps: int = 10, device="cpu") -> dict:
    """Median seconds of a 1-epoch :func:`train` run, fp32 against the study's bf16."""
    data = load_data(DatasetSpec(name="mnist5k", n_train=n_train))

    def run(precision):
        spec = TrainSpec(data=DatasetSpec(name="mnist5k", n_train=n_train), model=ModelSpec(arch="lenet", width=width),
                         attack=AttackSpec(name="pgd", eps=0.3, steps=steps, step_size=0.075), lr=1e-4, epochs=1,
                         precision=precision)
        with tempfile.TemporaryDirectory() as d:
            train(spec, d, data=data, device=device)

    names = ("fp32", "bf16")
    times = timer([lambda p=p: run(p) for p in names], [f"train() epoch lenet-{width} {p}" for p in names])
    return dict(zip(names, times))


def compiled_step(timer, width: int = 16, steps: int = 10, device="cpu") -> dict:
    """Eager vs ``torch.compile``-d network, fp32 training step; ``compile_s``: the first call."""
    import time
    x, y = _mnist_batch(100, device)
    eager = _lenet(width, 0, device)
    compiled = torch.compile(copy.deepcopy(eager))
    opts = [torch.optim.Adam(m.parameters(), lr=1e-4) for m in (eager, compiled)]
    t0 = time.perf_counter()
    training_step(compiled, opts[1], x, y, eps=0.3, steps=steps, precision="fp32", device=device)
    compile_s = time.perf_counter() - t0
    fns = [lambda m=m, o=o: training_step(m, o, x, y, eps=0.3, steps=steps, precision="fp32", device=device)
           for m, o in zip((eager, compiled), opts)]
    t_eager, t_comp = timer(fns, [f"step lenet-{width} eager", f"step lenet-{width} compiled"])
    return {"eager": t_eager, "compiled": t_comp, "compile_s": compile_s}


def stacked_models(timer, n_models: int = 9, width: int = 4, steps: int = 10, device="cpu") -> dict:
    """``n_models`` LeNets (one per seed, budgets spread over 0.05-0.4) trained one PGD step each:
    a loop over the models against one ``vmap``-ped step of the stacked models."""
    x, y = _mnist_batch(100, device)
    models = [_lenet(width, s, device) for s in range(n_models)]
    eps = torch.linspace(0.05, 0.4, n_models, device=device)
    loop_opts = [torch.optim.Adam(m.parameters(), lr=1e-4) for m in models]

    def loop():
        for m, o, e in zip(models, loop_opts, eps.tolist()):
            training_step(m, o, x, y, eps=e, steps=steps, precision="fp32", device=device)

    params, buffers = stack_module_state([copy.deepcopy(m) for m in models])
    base = copy.deepcopy(models[0]).to("meta")
    stacked_opt = torch.optim.Adam(params.values(), lr=1e-4)

    def loss_fn(p, b, xi, yi):
        return F.cross_entropy(functional_call(base, (p, b), (xi,)), yi, reduction="sum")

    input_grad = vmap(grad(loss_fn, argnums=2), in_dims=(0, 0, 0, None))
    param_grad = vmap(grad(lambda p, b, xi, yi: loss_fn(p, b, xi, yi) / len(yi)), in_dims=(0, 0, 0, None))
    e = eps.view(-1, 1, 1, 1, 1)
    gen = torch.Generator(device=device).manual_seed(0)

    def together():
        detached = {k: v.detach() for k, v in params.items()}
        x0 = x.expand(n_models, *x.shape)
        xa = (x0 + (torch.rand(x0.shape, generator=gen, device=device) * 2 - 1) * e).clamp(0, 1)
        for _ in range(steps):
            g = input_grad(detached, buffers, xa, y)
            xa = (x0 + (xa + 0.25 * e * g.sign() - x0).clamp(-e, e)).clamp(0, 1)
        grads = param_grad(detached, buffers, xa, y)
        for k, p in params.items():
            p.grad = grads[k]
        stacked_opt.step()

    t_loop, t_vmap = timer([loop, together], [f"{n_models} x lenet-{width} loop", f"{n_models} x lenet-{width} vmap"])
    return {"loop": t_loop, "vmap": t_vmap, "n_models": n_models, "width": width}


def evaluation_costs(timer, width: int = 16, n: int = 100, device="cpu", square_queries: int = 1000) -> dict:
    """Seconds per test image of the Table 1 attacks (PGD-100, APGD-CE 100, Square) on one LeNet,
    beside one PGD-10 training step per image (what a training epoch costs per image)."""
    x, y = _mnist_batch(n, device)
    model = _lenet(width, 0, device).eval()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    attacks = {"PGD-100": AttackSpec(name="pgd", eps=0.3, steps=100, step_size=0.01),
               "APGD-CE 100": AttackSpec(name="apgd-ce", eps=0.3, steps=100),
               f"Square {square_queries}": AttackSpec(name="square", eps=0.3, n_queries=square_queries)}
    gen = torch.Generator().manual_seed(0)
    fns = [lambda: training_step(model.train(), opt, x, y, eps=0.3, steps=10, precision="fp32", device=device)]
    fns += [lambda a=make_attack(spec): a(model.eval(), x, y, gen) for spec in attacks.values()]
    times = timer(fns, ["training step", *attacks], n=1)
    return {name: t / n for name, t in zip(("training step (PGD-10)", *attacks), times)}

