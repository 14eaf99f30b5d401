"""``make bench``: performance as ratios measured in one run (never as timed tests).

1. PGD step / input-gradient floor: the time of one PGD step divided by one forward+backward w.r.t.
   the input with the parameters frozen (LeNet-16 batch 100, ResNet18-8 batch 32).  Target ≤ 1.05.
2. Adversarial training epoch / reference loop: our loop (attack gradients w.r.t. the input only)
   against a loop whose attack calls ``loss.backward()`` and so also computes weight gradients, as the
   original code does.  Target ≤ 0.7.
3. Hessian: HVP passes and time for the top-20 eigenpairs with Lanczos (``scipy eigsh``) beside a
   deflated power iteration (max 50 iterations per eigenvalue, tol 1e-3, as the original) on the same
   operator, with the errors of each against a tight reference.

Medians over repeats; run it on an idle machine (other processes on the two cores distort timings).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from .attacks import pgd
from .models import build_model


def median_time(fn, repeats: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _model(arch: str, width: int, in_shape, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(arch, width, in_shape=in_shape, num_classes=10).eval()


def pgd_step_ratio(arch: str, width: int, batch: int, in_shape, steps: int = 10, repeats: int = 7) -> dict:
    """Median time of one PGD step over the floor (input gradient, parameters frozen)."""
    model = _model(arch, width, in_shape)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *in_shape, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)

    def floor():
        for p in model.parameters():
            p.requires_grad_(False)
        xi = x.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(xi), y, reduction="sum"), xi)
        for p in model.parameters():
            p.requires_grad_(True)

    def attack():
        pgd(model, x, y, 0.1, steps=steps, step_size=0.01, random_start="none")

    t_floor = median_time(floor, repeats)
    t_step = median_time(attack, repeats) / steps
    return {"case": f"{arch}-{width} batch {batch}", "floor_ms": 1e3 * t_floor, "step_ms": 1e3 * t_step,
            "ratio": t_step / t_floor}


def _reference_pgd(model, x, y, eps, steps, step_size, generator):
    """The original's attack loop: random start, ``loss.backward()`` (weight gradients computed too)."""
    model.eval()
    delta = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
    x_adv = (x + delta).clamp(0, 1)
    for _ in range(steps):
        x_adv = x_adv.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        model.zero_grad()
        loss.backward()
        x_adv = x + (x_adv.detach() + step_size * x_adv.grad.sign() - x).clamp(-eps, eps)
        x_adv = x_adv.clamp(0, 1)
    model.zero_grad()
    model.train()
    return x_adv.detach()


def attack_vs_reference(arch: str, width: int, batch: int, in_shape, steps: int = 10, repeats: int = 5) -> dict:
    """Median time of one step of our PGD over one step of the original-style attack (weight gradients)."""
    model = _model(arch, width, in_shape)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *in_shape, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    ours = median_time(lambda: pgd(model, x, y, 0.1, steps=steps, step_size=0.01, random_start="none"), repeats)
    ref = median_time(lambda: _reference_pgd(model, x, y, 0.1, steps, 0.01, torch.Generator().manual_seed(0)),
                      repeats)
    return {"case": f"{arch}-{width} batch {batch}", "ours_ms": 1e3 * ours / steps, "ref_ms": 1e3 * ref / steps,
            "ratio": ours / ref}


def epoch_ratio(width: int = 16, n_train: int = 2000, steps: int = 10, repeats: int = 3) -> dict:
    """Median time of one adversarial epoch: our loop over the reference loop."""
    import tempfile
    from .attacks import AttackSpec
    from .data import DatasetSpec, batches, load_data
    from .models import ModelSpec
    from .train import TrainSpec, train

    spec = TrainSpec(data=DatasetSpec(name="mnist5k", n_train=n_train), model=ModelSpec(arch="lenet", width=width),
                     attack=AttackSpec(name="pgd", eps=0.3, steps=steps, step_size=0.075), lr=1e-3, epochs=1)
    data = load_data(spec.data)

    def ours():
        with tempfile.TemporaryDirectory() as d:
            train(spec, d, data=data)

    def reference():
        model = _model("lenet", width, (1, 28, 28))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        model.train()
        for xb, yb in batches(data[0].x, data[0].y, 100, generator=g):
            x_adv = _reference_pgd(model, xb, yb, 0.3, steps, 0.075, g)
            loss = F.cross_entropy(model(x_adv), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

    t_ours, t_ref = median_time(ours, repeats, 1), median_time(reference, repeats, 1)
    return {"case": f"lenet-{width}, {n_train} images, PGD-{steps}", "ours_s": t_ours, "reference_s": t_ref,
            "ratio": t_ours / t_ref}


def hessian_comparison(eps: float = 0.2, n_examples: int = 500, k: int = 20) -> list[str]:
    """Lanczos vs deflated power iteration for the top-k Hessian eigenpairs of the quick profile's
    LeNet trained at ``eps`` (notebook 02's model, from the run store or trained here), both against a
    tight Lanczos reference (tol 0, ncv 4k)."""
    import numpy as np
    from . import hessian
    from .data import load_data
    from .dynamics import eps_spec
    from .experiments import zoo_params
    from .io import outputs_dir
    from .landscape import pgd_attack
    from .runs import get_or_train

    Z = zoo_params("quick")
    spec = eps_spec(Z, eps)
    width = spec.model.width
    model = get_or_train(spec, outputs_dir("quick", "runs")).model()
    data = load_data(spec.data)[0]
    gen = torch.Generator().manual_seed(0)
    x_adv = hessian.fixed_adversarial_set(model, data.x[:n_examples], data.y[:n_examples],
                                          pgd_attack(eps, steps=Z.pgd_steps, step_ratio=Z.step_ratio), generator=gen)
    y = data.y[:n_examples]
    lines = [f"lenet-{width} trained at eps {eps:g} ({spec.epochs} epochs, the quick model of 02; "
             f"{sum(p.numel() for p in model.parameters())} parameters), {n_examples} fixed PGD examples, k = {k}"]
    ref = hessian.top_eigenpairs(model, x_adv, y, k=k, tol=0.0, ncv=min(4 * k, 200),
                                 generator=torch.Generator().manual_seed(1))
    rows = []
    for name, fn in (("lanczos (eigsh)", lambda: hessian.top_eigenpairs(model, x_adv, y, k=k,
                                                                          generator=torch.Generator().manual_seed(2))),
                     ("power iteration", lambda: hessian.power_iteration_topk(model, x_adv, y, k,
                                                                              generator=torch.Generator().manual_seed(2)))):
        t0 = time.perf_counter()
        res = fn()
        secs = time.perf_counter() - t0
        vals = np.sort(res.values)[::-1]
        err = np.abs(vals - ref.values) / np.abs(ref.values)
        rows.append((name, res.n_hvp, secs, err))
        lines.append(f"{name:<17} {res.n_hvp:5d} HVP passes  {secs:7.1f} s  max rel. error {err.max():.2e}"
                     f"  within 0.5%: {int((err <= 5e-3).sum())}/{k}")
    lines.append(f"reference (tol 0): {ref.n_hvp} HVP passes; top eigenvalue {ref.values[0]:.4f}, "
                 f"20th {ref.values[-1]:.4f}")
    lines.append(f"time ratio lanczos / power iteration: {rows[0][2] / rows[1][2]:.3f}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m landscape_core.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--skip-hessian", action="store_true")
    args = parser.parse_args(argv)
    reps = 3 if args.quick else 7
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("\n1. PGD step / input-gradient floor (target <= 1.05)")
    for arch, width, batch, shape in (("lenet", 16, 100, (1, 28, 28)), ("resnet18", 8, 32, (3, 32, 32))):
        r = pgd_step_ratio(arch, width, batch, shape, repeats=reps)
        print(f"   {r['case']:<26} floor {r['floor_ms']:7.2f} ms  step {r['step_ms']:7.2f} ms  ratio {r['ratio']:.3f}")
    print("\n2. adversarial epoch / reference loop with weight gradients in the attack (target <= 0.7)")
    for arch, width, batch, shape in (("lenet", 16, 100, (1, 28, 28)), ("resnet18", 8, 32, (3, 32, 32))):
        r = attack_vs_reference(arch, width, batch, shape, repeats=reps)
        print(f"   attack step {r['case']:<20} ours {r['ours_ms']:7.2f} ms  reference {r['ref_ms']:7.2f} ms"
              f"  ratio {r['ratio']:.3f}")
    r = epoch_ratio(repeats=2 if args.quick else 3)
    print(f"   {r['case']:<26} ours {r['ours_s']:6.2f} s  reference {r['reference_s']:6.2f} s  ratio {r['ratio']:.3f}")
    if not args.skip_hessian:
        print("\n3. top-20 Hessian eigenpairs: Lanczos (eigsh) vs deflated power iteration (max 50 it., tol 1e-3)")
        for line in hessian_comparison():
            print("   " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
