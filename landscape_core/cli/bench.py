"""``make bench``: performance as ratios measured in one run (never as timed tests).

1. PGD step / input-gradient floor: the time of one PGD step divided by one forward+backward w.r.t.
   the input with the parameters frozen (LeNet-16 batch 100, ResNet18-8 batch 32).  Target ≤ 1.05.
2. Adversarial training epoch / reference loop: our loop (attack gradients w.r.t. the input only)
   against a loop whose attack calls ``loss.backward()`` and so also computes weight gradients, as the
   original code does; steady-state epochs (see :func:`epoch_ratio`).  Target ≤ 0.7.
3. Hessian: HVP passes and time for the top-20 eigenpairs with Lanczos (``scipy eigsh``) beside a
   deflated power iteration (max 50 iterations per eigenvalue, tol 1e-3, as the original) on the same
   operator, with the errors of each against a tight reference.
4. (``--paper-epochs``, meant for a GPU) seconds per adversarial training epoch at
   the paper's settings, timed on the data at hand (embedded MNIST; random CIFAR-shaped images) and
   scaled to the full training sets: what ``make reproduce PROFILE=paper`` costs per epoch.
5. Levers (:mod:`.levers`): bf16 autocast and channels_last, ``torch.compile``, ``torch.func`` stacked
   models, the cost of evaluation; each as a ratio to the plain fp32 path.
6. Batched training (:mod:`landscape_core.training.batched`): 1, 3, 9 and 27 LeNet-16 runs and 1 and 3
   ResNet18-8 / VGG16-8 runs trained one by one against one stacked model (:func:`batched_ratio`); on a
   GPU also 1, 3, 9 and 27 LeNet-16 at the paper's PGD-50, batch 100 (one by one: with CUDA graphs), and
   the paper profile's MNIST LeNet-16 grid projected from them in GPU hours (:func:`mnist_grid_projection`).

Medians over repeats; every measurement's min / median / max is printed at the end and a spread above
:data:`BUSY_SPREAD` flags a busy machine (other processes on the two cores distort timings).
``--only levers`` (etc.) runs some sections; ``make bench QUICK=1`` passes ``--quick``.
``--device cuda`` times the CUDA path (kernels are synchronised before every clock read).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..analysis import hessian
from ..attacks import AttackSpec, cuda_graphs_enabled, make_attack, pgd
from ..core.io import outputs_dir
from ..core.precision import bf16_fast, resolve_precision
from ..data import DatasetSpec, Split, batches, load_data
from ..models import ModelSpec, build_model
from ..studies import NOTEBOOKS, GradientDynamicsParams, NotebookParams
from ..training import TrainSpec, compatible, get_or_train, train, train_batched
from . import levers as levers_mod
from .params import collect, load_params, notebook_runs, passes


DEVICE = torch.device("cpu")   # set by main(); every timed function runs there


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


RECORD: list[tuple[str, list[float]]] = []   # every timed function of this run: (label, wall times)
BUSY_SPREAD = 1.25    # max / min of one measurement above this: the machine was busy (or throttling)


def interleaved_times(fns, repeats: int = 7, warmup: int = 2, labels=None) -> list[list[float]]:
    """Wall times of each of ``fns``, called in turn in every round (a drift of the machine hits all
    alike); CUDA work is synchronised before every clock read.  Every series is kept in
    :data:`RECORD` under its label, for the spread report at the end."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            _sync()
            t0 = time.perf_counter()
            fn()
            _sync()
            ts.append(time.perf_counter() - t0)
    for i, ts in enumerate(times):
        RECORD.append((labels[i] if labels else f"{getattr(fns[i], '__name__', 'fn')}", ts))
    return times


def median_time(fn, repeats: int = 7, warmup: int = 2, label=None) -> float:
    return statistics.median(interleaved_times([fn], repeats, warmup, [label] if label else None)[0])


def paired_medians(fa, fb, repeats: int = 7, warmup: int = 2, labels=None) -> tuple[float, float]:
    """Medians of ``fa`` and ``fb`` timed alternately."""
    ta, tb = interleaved_times([fa, fb], repeats, warmup, labels)
    return statistics.median(ta), statistics.median(tb)


def median_timer(repeats: int):
    """``timer(fns, labels, n=None) -> medians`` (n repeats, default ``repeats``): what :mod:`.levers` uses."""
    def timer(fns, labels, n: int | None = None):
        return [statistics.median(ts) for ts in interleaved_times(fns, n or repeats, 1, labels)]
    return timer


def verdict(ratio: float, target: float) -> str:
    return f"target <= {target:g}: {'PASS' if ratio <= target else 'FAIL'}"


def spread_report() -> list[str]:
    """min / median / max of every measurement, flagged when max / min > :data:`BUSY_SPREAD`."""
    lines, busy = [], 0
    for label, ts in RECORD:
        if len(ts) < 2:
            continue
        lo, med, hi = min(ts), statistics.median(ts), max(ts)
        flag = hi / lo > BUSY_SPREAD
        busy += flag
        lines.append(f"{label[:44]:<44} {1e3 * lo:9.1f} {1e3 * med:9.1f} {1e3 * hi:9.1f} ms  x{hi / lo:4.2f}"
                     f"{'  BUSY' if flag else ''}")
    head = [f"{'measurement':<44} {'min':>9} {'median':>9} {'max':>9}     max/min"]
    tail = [f"{busy} of {len(lines)} measurements spread more than x{BUSY_SPREAD:g}: " +
            ("the machine was busy or throttling; rerun on an idle machine before trusting the ratios"
             if busy else "the machine was quiet")]
    return head + lines + tail


def _model(arch: str, width: int, in_shape, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(arch, width, in_shape=in_shape, num_classes=10).eval().to(DEVICE)


def _batch(batch: int, in_shape):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, *in_shape, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    return x.to(DEVICE), y.to(DEVICE)


def pgd_step_ratio(arch: str, width: int, batch: int, in_shape, steps: int = 10, repeats: int = 7) -> dict:
    """Median time of one PGD step over the floor (input gradient, parameters frozen)."""
    model = _model(arch, width, in_shape)
    x, y = _batch(batch, in_shape)

    def floor():                     # `steps` input gradients, parameters frozen once (as pgd does)
        for p in model.parameters():
            p.requires_grad_(False)
        for _ in range(steps):
            xi = x.clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(model(xi), y, reduction="sum"), xi)
        for p in model.parameters():
            p.requires_grad_(True)

    def attack():
        pgd(model, x, y, 0.1, steps=steps, step_size=0.01, random_start="none")

    t_floor, t_step = (t / steps for t in paired_medians(floor, attack, repeats,
                                                                labels=[f"{arch}-{width} input-gradient floor", f"{arch}-{width} PGD-{steps}"]))
    return {"case": f"{arch}-{width} batch {batch}", "floor_ms": 1e3 * t_floor, "step_ms": 1e3 * t_step,
            "ratio": t_step / t_floor}


def _reference_pgd(model, x, y, eps, steps, step_size, generator):
    """The original's attack loop: random start, ``loss.backward()`` (weight gradients computed too)."""
    model.eval()
    delta = (torch.rand(x.shape, generator=generator).to(x.device) * 2 - 1) * eps
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
    x, y = _batch(batch, in_shape)
    ours, ref = paired_medians(lambda: pgd(model, x, y, 0.1, steps=steps, step_size=0.01, random_start="none"),
                               lambda: _reference_pgd(model, x, y, 0.1, steps, 0.01, torch.Generator().manual_seed(0)),
                               repeats, labels=[f"{arch}-{width} PGD-{steps} ours", f"{arch}-{width} PGD-{steps} reference"])
    return {"case": f"{arch}-{width} batch {batch}", "ours_ms": 1e3 * ours / steps, "ref_ms": 1e3 * ref / steps,
            "ratio": ours / ref}


def epoch_ratio(width: int = 16, n_train: int = 2000, steps: int = 10, repeats: int = 3) -> dict:
    """Steady-state cost of one adversarial epoch: our :func:`train` over the reference loop.

    Each side is timed for a 2-epoch and a 1-epoch run from scratch and the difference is the epoch:
    one-time costs (building the model, ``init.pt`` / ``final.pt`` / ``probes.pt``) cancel, the
    per-epoch ones (probes, the atomic ``last.pt`` written for resume) stay in.  The one-time
    overhead of a 1-epoch ``train`` call is reported beside it."""

    data = load_data(DatasetSpec(name="mnist5k", n_train=n_train))

    def spec(epochs):
        return TrainSpec(data=DatasetSpec(name="mnist5k", n_train=n_train), model=ModelSpec(arch="lenet", width=width),
                         attack=AttackSpec(name="pgd", eps=0.3, steps=steps, step_size=0.075), lr=1e-3, epochs=epochs)

    loop_seconds = {}

    def ours(epochs):
        with tempfile.TemporaryDirectory() as d:
            # train's own clock covers the batches only (attack, step, probes), not the checkpoints
            loop_seconds.setdefault(epochs, []).append(train(spec(epochs), d, data=data, device=DEVICE).seconds)

    def reference(epochs):
        model = _model("lenet", width, (1, 28, 28))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        model.train()
        for _ in range(epochs):
            for xb, yb in batches(data[0].x, data[0].y, 100, generator=g):
                xb, yb = xb.to(DEVICE), yb.to(DEVICE)
                x_adv = _reference_pgd(model, xb, yb, 0.3, steps, 0.075, g)
                loss = F.cross_entropy(model(x_adv), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()

    ours(1), reference(1)                                   # warm-up (the 2-epoch runs need none)
    o1, o2, r1, r2 = interleaved_times([lambda: ours(1), lambda: ours(2), lambda: reference(1),
                                        lambda: reference(2)], repeats, warmup=0,
                                       labels=["train() 1 epoch", "train() 2 epochs", "reference 1 epoch",
                                               "reference 2 epochs"])
    med = statistics.median
    t_ours = med(b - a for a, b in zip(o1, o2))
    t_ref = med(b - a for a, b in zip(r1, r2))
    t_loop = med(b - a for a, b in zip(loop_seconds[1][1:], loop_seconds[2]))
    full = 60000 / n_train                     # a full MNIST epoch: the batches scale, the checkpoint not
    checkpoint = max(t_ours - t_loop, 0.0)
    return {"case": f"lenet-{width}, {n_train} images, PGD-{steps}", "ours_s": t_ours, "reference_s": t_ref,
            "ratio": t_ours / t_ref, "loop_s": t_loop, "loop_ratio": t_loop / t_ref, "checkpoint_s": checkpoint,
            "full_ratio": (full * t_loop + checkpoint) / (full * t_ref), "full_factor": full,
            "one_time_s": med(o1) - t_ours, "ref_one_time_s": med(r1) - t_ref}


# (label, dataset, arch, width, eps, PGD steps, step ratio, optimizer, lr, batch, full training-set size)
PAPER_SETTINGS = (
    ("MNIST LeNet-16, PGD-50", "mnist", "lenet", 16, 0.4, 50, 0.025, "adam", 1e-4, 100, 60000),
    ("CIFAR10 ResNet18-8, PGD-10", "cifar10", "resnet18", 8, 8 / 255, 10, 0.25, "sgd", 0.1, 128, 50000),
    ("CIFAR10 VGG16-8, PGD-10", "cifar10", "vgg16", 8, 8 / 255, 10, 0.25, "sgd", 0.1, 128, 50000),
    ("CIFAR10 ResNet18-16, PGD-10", "cifar10", "resnet18", 16, 8 / 255, 10, 0.25, "sgd", 0.1, 128, 50000),
)


def paper_epoch_times(n_images: int = 5000, repeats: int = 2) -> list[dict]:
    """Seconds per adversarial epoch at the paper's settings (:data:`PAPER_SETTINGS`), through
    :func:`train` (probes and checkpoints included), timed on ``n_images`` and scaled linearly to the
    full training set.  MNIST: the embedded real images (at most 4,000); CIFAR10: random images of
    CIFAR's shape (the cost of an epoch does not depend on the pixel values)."""

    rows = []
    for label, dataset, arch, width, eps, steps, ratio, opt, lr, batch, full in PAPER_SETTINGS:
        if dataset == "mnist":
            train_split = load_data(DatasetSpec(name="mnist5k"))[0]
            train_split = Split(train_split.x[:n_images], train_split.y[:n_images])
        else:
            g = torch.Generator().manual_seed(0)
            train_split = Split(torch.rand(n_images, 3, 32, 32, generator=g),
                                torch.randint(0, 10, (n_images,), generator=g))
        spec = TrainSpec(data=DatasetSpec(name=dataset), model=ModelSpec(arch=arch, width=width),
                         attack=AttackSpec(name="pgd", eps=eps, steps=steps, step_size=ratio * eps),
                         optimizer=opt, lr=lr, batch_size=batch, epochs=1, augment=dataset == "cifar10")
        data = (train_split, Split(train_split.x[:1], train_split.y[:1]))

        def epoch():
            with tempfile.TemporaryDirectory() as d:
                train(spec, d, data=data, device=DEVICE)

        secs = median_time(epoch, repeats, 1, label=f"{label} epoch")
        n = train_split.n
        rows.append({"case": label, "images": n, "seconds": secs, "full_epoch_s": secs * full / n})
    return rows


def hessian_comparison(eps: float = 0.2, n_examples: int = 500, k: int = 20) -> list[str]:
    """Lanczos vs deflated power iteration for the top-k Hessian eigenpairs of the quick profile's
    LeNet trained at ``eps`` (notebook 02's model, from the run store or trained here), both against a
    tight Lanczos reference (tol 0, ncv 4k)."""

    Z = GradientDynamicsParams.from_params(load_params("02_gradient_dynamics", "quick")).zoo()
    spec = Z.spec(eps)
    width = spec.model.width
    model = get_or_train(spec, outputs_dir("quick", "runs")).model()
    data = load_data(spec.data)[0]
    gen = torch.Generator().manual_seed(0)
    x_adv = hessian.fixed_adversarial_set(model, data.x[:n_examples], data.y[:n_examples],
                                          make_attack(Z.training.attack(eps)), generator=gen)
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


def levers(reps: int) -> None:
    """Section 5 (:mod:`.levers`): each lever as a ratio to the plain fp32 path, measured here."""
    timer = median_timer(reps)
    units = "has" if bf16_fast(DEVICE.type) else "has NO"
    print(f"   this {DEVICE.type} {units} bf16 units (precision auto -> "
          f"{resolve_precision('auto', DEVICE.type)})")
    steps = levers_mod.precision_steps(timer, device=DEVICE)
    base = steps["fp32"]
    for name, t in steps.items():
        print(f"   PGD-10 training step lenet-16, {name:<30} {1e3 * t:7.1f} ms  fp32 / this {base / t:5.2f}x")
    ep = levers_mod.precision_epochs(timer, device=DEVICE)
    print(f"   train() epoch lenet-16 1,000 images: fp32 {ep['fp32']:.2f} s, bf16 (+channels_last) {ep['bf16']:.2f} s"
          f"  speed-up {ep['fp32'] / ep['bf16']:.2f}x")
    c = levers_mod.compiled_step(timer, device=DEVICE)
    print(f"   torch.compile lenet-16 step: eager {1e3 * c['eager']:.1f} ms, compiled {1e3 * c['compiled']:.1f} ms"
          f"  speed-up {c['eager'] / c['compiled']:.2f}x  (first call, compiling: {c['compile_s']:.1f} s)")
    v = levers_mod.stacked_models(timer, device=DEVICE)
    print(f"   torch.func vmap, {v['n_models']} x lenet-{v['width']} one PGD-10 step each: loop {1e3 * v['loop']:.1f} ms,"
          f" stacked {1e3 * v['vmap']:.1f} ms  speed-up {v['loop'] / v['vmap']:.2f}x")
    e = levers_mod.evaluation_costs(timer, device=DEVICE)
    step = e.pop("training step (PGD-10)")
    print(f"   evaluation per test image, in PGD-10 training steps per image ({1e3 * step:.2f} ms):  " +
          ",  ".join(f"{k} {t / step:.1f}" for k, t in e.items()))


def batched_ratio(arch: str, width: int, in_shape, members: int, *, updates: int = 3, steps: int = 10,
                  batch: int = 100, repeats: int = 2, precision: str = "fp32") -> dict:
    """6. ``members`` runs of one architecture (other seeds and learning rates, as a Fig 5 grid's) trained
    one by one (``train``) and together as one stacked model (``train_batched``): ``updates`` updates of
    ``batch`` images with PGD-``steps``, each call into fresh folders (files written as in a real run).
    MNIST: the embedded images; CIFAR-shaped: random images (the arithmetic is the same)."""
    n = updates * batch
    if in_shape[0] == 1:
        name, data = "mnist5k", load_data(DatasetSpec(name="mnist5k", n_train=n))
    else:
        g = torch.Generator().manual_seed(0)
        split = Split(torch.rand(n, *in_shape, generator=g), torch.randint(0, 10, (n,), generator=g))
        name, data = "cifar10", (split, split)
    eps = 0.3 if name == "mnist5k" else 8 / 255
    specs = [TrainSpec(data=DatasetSpec(name=name, n_train=n), model=ModelSpec(arch=arch, width=width),
                       attack=AttackSpec(name="pgd", eps=eps, steps=steps, step_size=eps / 4), epochs=1,
                       batch_size=batch, seed=m, lr=1e-3 * (1 + m % 3), precision=precision) for m in range(members)]

    def alone():
        with tempfile.TemporaryDirectory() as d:
            for m, s in enumerate(specs):
                train(s, f"{d}/{m}", device=DEVICE, data=data)

    def together():
        with tempfile.TemporaryDirectory() as d:
            train_batched(specs, [f"{d}/{m}" for m in range(members)], device=DEVICE, data=data)

    case = f"{arch}-{width} x{members}" + (f" {precision}" if precision != "fp32" else "")
    t_alone, t_together = paired_medians(alone, together, repeats, 1, [f"{case} one by one", f"{case} batched"])
    return {"case": case, "members": members, "alone_s": t_alone, "together_s": t_together,
            "ratio": t_alone / t_together}


def paper_grid(arch: str = "lenet", width: int = 16, data: str = "mnist") -> list[TrainSpec]:
    """The paper profile's training runs of ``arch``-``width`` on ``data``, every notebook's, each once."""
    params = {label: P for name in NOTEBOOKS for label, P in notebook_runs(name, "paper").items()}
    return [s for s, _ in collect(params).values()
            if (s.model.arch, s.model.width, s.data.name) == (arch, width, data)]


def grid_hours(specs: list[TrainSpec], seconds_per_pass: dict[int, float], stack: int = 1) -> float:
    """Projected device hours of ``specs`` trained in stacks of up to ``stack`` compatible runs
    (:func:`~landscape_core.training.compatible`, as ``make runs BATCHED=stack`` groups them; 1: one by
    one), from measured seconds per member and gradient pass by stack size (``{members: seconds}``): each
    stack at the rate of the largest measured size not above its own, for the passes of its longest member."""
    total = 0.0
    for group in compatible(specs):
        for i in range(0, len(group), stack):
            part = group[i:i + stack]
            size = max(k for k in seconds_per_pass if k <= len(part))
            total += len(part) * max(passes(s) for s in part) * seconds_per_pass[size]
    return total / 3600


def mnist_grid_projection(members=(1, 3, 9, 27), *, updates: int = 20, steps: int = 50, batch: int = 100,
                          repeats: int = 2) -> dict:
    """The issue's GPU measurement: ``members`` LeNet-16 runs at PGD-``steps``, ``updates`` updates of ``batch``,
    one by one (on a GPU with CUDA graphs, as ``train`` runs them) and as one stack (:func:`batched_ratio`),
    and the paper profile's MNIST LeNet-16 grid (:func:`paper_grid`) projected from the measured seconds per
    member-pass: one by one (their median over ``members``) and in stacks of up to ``max(members)``."""
    rows = [batched_ratio("lenet", 16, (1, 28, 28), m, updates=updates, steps=steps, batch=batch, repeats=repeats)
            for m in members]
    per_pass = {r["members"]: r["together_s"] / (r["members"] * updates * (steps + 1)) for r in rows}
    alone = statistics.median(r["alone_s"] / (r["members"] * updates * (steps + 1)) for r in rows)
    grid = paper_grid()
    one, stacked = grid_hours(grid, {1: alone}), grid_hours(grid, per_pass, max(members))
    return {"rows": rows, "runs": len(grid), "passes": sum(passes(s) for s in grid), "alone_h": one,
            "batched_h": stacked, "ratio": one / stacked}


SECTIONS = ("attack", "epoch", "hessian", "paper", "levers", "batched")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m landscape_core.cli.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (3 instead of 7)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--skip-hessian", action="store_true")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"), help="default cpu")
    parser.add_argument("--paper-epochs", action="store_true",
                        help="also time epochs at the paper's settings (meant for a GPU: slow on a CPU)")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = NotebookParams(device=args.device).torch_device()
    run = set(args.only or [s for s in SECTIONS if s != "paper" or args.paper_epochs])
    if args.skip_hessian:
        run.discard("hessian")
    reps = 3 if args.quick else 7
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, device {DEVICE} ({where}); medians of {reps} repeats")
    if DEVICE.type == "cuda":
        print(f"PGD steps as CUDA graphs: {'on' if cuda_graphs_enabled() else 'off (LANDSCAPE_CUDA_GRAPHS=0)'}")
    if "attack" in run:
        print("\n1. PGD step / input-gradient floor")
        for arch, width, batch, shape in (("lenet", 16, 100, (1, 28, 28)), ("resnet18", 8, 32, (3, 32, 32))):
            r = pgd_step_ratio(arch, width, batch, shape, repeats=reps)
            print(f"   {r['case']:<26} floor {r['floor_ms']:7.2f} ms  step {r['step_ms']:7.2f} ms  "
                  f"ratio {r['ratio']:.3f}  {verdict(r['ratio'], 1.05)}")
    if "epoch" in run:
        print("\n2. adversarial training against the original-style loop (weight gradients inside the attack)")
        for arch, width, batch, shape in (("lenet", 16, 100, (1, 28, 28)), ("resnet18", 8, 32, (3, 32, 32))):
            r = attack_vs_reference(arch, width, batch, shape, repeats=reps)
            print(f"   one attack step {r['case']:<20} ours {r['ours_ms']:7.2f} ms  reference {r['ref_ms']:7.2f} ms"
                  f"  ratio {r['ratio']:.3f}")
        r = epoch_ratio(repeats=2 if args.quick else 3)
        print(f"   one epoch {r['case']:<26} ours {r['ours_s']:6.2f} s  reference {r['reference_s']:6.2f} s"
              f"  ratio {r['ratio']:.3f}  {verdict(r['ratio'], 0.7)}")
        print(f"     batches only (attack, step, probes)   ours {r['loop_s']:6.2f} s  ratio {r['loop_ratio']:.3f};"
              f"  last.pt for resume {r['checkpoint_s']:.2f} s per epoch")
        print(f"     projected to a 60,000-image epoch (batches x{r['full_factor']:g}, one checkpoint): "
              f"ratio {r['full_ratio']:.3f}")
        print(f"     (one-time cost of a train() call, outside the epoch: ours {r['one_time_s']:.2f} s, "
              f"reference loop {r['ref_one_time_s']:.2f} s)")
    if "hessian" in run:
        print("\n3. top-20 Hessian eigenpairs: Lanczos (eigsh) vs deflated power iteration (max 50 it., tol 1e-3)")
        for line in hessian_comparison():
            print("   " + line)
    if "paper" in run:
        print("\n4. one adversarial epoch at the paper's settings (timed on the images at hand, scaled to the full set)")
        for r in paper_epoch_times(repeats=1 if args.quick else 2):
            print(f"   {r['case']:<28} {r['images']} images {r['seconds']:7.2f} s  -> full epoch {r['full_epoch_s']:8.1f} s")
    if "levers" in run:
        print("\n5. levers for small machines (ratios to the plain fp32 path, this run)")
        levers(reps)
    if "batched" in run:
        print("\n6. batched training: M runs one by one / as one stacked model (throughput ratio; > 1: batched faster)")
        cases = [("lenet", 16, (1, 28, 28), m, dict(updates=3, steps=10, batch=100)) for m in (1, 3, 9, 27)]
        cases += [(a, 8, (3, 32, 32), m, dict(updates=2, steps=2, batch=32)) for a in ("resnet18", "vgg16")
                  for m in (1, 3)]
        if resolve_precision("auto", DEVICE.type) == "bf16":  # the quick profile's 02 zoo: LeNet-8 in bf16
            cases.append(("lenet", 8, (1, 28, 28), 9, dict(updates=3, steps=10, batch=100, precision="bf16")))
        for arch, width, shape, m, kw in cases[:3] + cases[4:6] if args.quick else cases:
            r = batched_ratio(arch, width, shape, m, repeats=1 if args.quick else 2, **kw)
            print(f"   {r['case']:<23} PGD-{kw['steps']}, {kw['updates']} updates of {kw['batch']}: one by one "
                  f"{r['alone_s']:7.2f} s  batched {r['together_s']:7.2f} s  ratio {r['ratio']:.2f}")
        if DEVICE.type == "cuda":
            print("   the paper's MNIST grid: LeNet-16, PGD-50, 20 updates of 100 (one by one: CUDA graphs "
                  f"{'on' if cuda_graphs_enabled() else 'off'})")
            g = mnist_grid_projection(repeats=1 if args.quick else 2)
            for r in g["rows"]:
                print(f"   {r['case']:<23} one by one {r['alone_s']:7.2f} s  batched {r['together_s']:7.2f} s  "
                      f"ratio {r['ratio']:.2f}")
            print(f"   projected: the paper profile's {g['runs']} MNIST LeNet-16 runs ({g['passes']:.3g} gradient "
                  f"passes) one by one {g['alone_h']:.1f} GPU-h, in stacks of up to 27 {g['batched_h']:.1f} GPU-h "
                  f"({g['ratio']:.1f}x; goal >= 6x)")
        else:
            print("   (the paper's MNIST grid at PGD-50 and its projected GPU hours: --device cuda)")
    print("\ntiming spread (wall times of every measurement above)")
    for line in spread_report():
        print("   " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
