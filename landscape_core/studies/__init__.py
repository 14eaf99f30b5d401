"""Floor 5, studies: one module per paper section.  Each holds its notebook's typed parameters and the
experiments the notebook calls (one call each), returning typed results.  :data:`NOTEBOOKS` maps
every notebook to its parameter class (the runner validates a params file against it)."""
from .base import NotebookParams, TrainingParams, UsesZoo, ZooParams, ZooStudyParams
from .connectivity import ConnectivityParams
from .cosine import CosineParams
from .gradient_dynamics import GradientDynamicsParams
from .curvature import HessianParams
from .linear_model import LinearTheoryParams
from .local_lipschitzness import LipschitzParams
from .pas import PASParams

NOTEBOOKS: dict[str, type[NotebookParams]] = {
    "01_linear_theory": LinearTheoryParams,
    "02_gradient_dynamics": GradientDynamicsParams,
    "03_hessian": HessianParams,
    "04_cosine_similarity": CosineParams,
    "05_pas_table1": PASParams,
    "06_connectivity": ConnectivityParams,
    "07_local_lipschitzness": LipschitzParams,
}

__all__ = ["NOTEBOOKS", "NotebookParams", "TrainingParams", "ZooParams", "UsesZoo", "ZooStudyParams", "LinearTheoryParams",
           "GradientDynamicsParams", "HessianParams", "CosineParams", "PASParams", "ConnectivityParams",
           "LipschitzParams"]
