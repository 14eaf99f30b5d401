"""Floor 2, attacks: one interface (:class:`Attack`, a registry keyed by :class:`AttackSpec` names),
PGD / FGSM of our own (:mod:`.pgd`, CUDA graphs in :mod:`.cuda_graphs`), the ascent step of each threat
model and the one ascent loop every attack climbs with (:mod:`.steps`),
APGD and Square from ``pyautoattack`` (:mod:`.autoattack`), TRADES' KL attack and the
multi-targeted attack of the second source (:mod:`.smoothness`), and the one evaluation loop
(:mod:`.evaluation`).  Importing this package registers every attack."""
from . import pgd  # noqa: F401  (registers none, fgsm, pgd)
from . import autoattack  # noqa: F401  (registers apgd-ce, apgd-dlr, square)
from . import smoothness  # noqa: F401  (registers trades-kl, multi-targeted)
from .base import ATTACKS, Attack, AttackSpec, make_attack, register
from .cuda_graphs import cuda_graphs_enabled
from .evaluation import SetEval, adversarial_examples, model_device, sweep
from .pgd import fgsm, pgd
from .smoothness import multi_targeted, trades_perturb
from .steps import NORMS, RANDOM_STARTS, STEPS, L2Step, LinfStep, Step, ascend, ascent_step, draw, project, step_for

__all__ = ["ATTACKS", "Attack", "AttackSpec", "make_attack", "register", "pgd", "fgsm", "project", "NORMS",
           "RANDOM_STARTS", "Step", "LinfStep", "L2Step", "STEPS", "step_for", "ascent_step", "ascend", "draw",
           "trades_perturb", "multi_targeted", "SetEval", "sweep", "adversarial_examples", "model_device",
           "cuda_graphs_enabled"]
