"""Floor 4, analyses of trained models: the Hessian spectrum (:mod:`.hessian`), directions and landscape
scans (:mod:`.landscape`), perturbation similarity (:mod:`.similarity`), mode connectivity
(:mod:`.curves`) and the training of Bezier curves (:mod:`.curve_training`), the linear theory of Sec 3
(:mod:`.linear_theory`), training dynamics from the probes (:mod:`.dynamics`), the Table 1 attack suite and
ensembles (:mod:`.robustness`), reviewer 1's attack grid (:mod:`.attack_grid`), the gradient-masking flags
(:mod:`.masking`), local Lipschitzness and separation (:mod:`.lipschitz`), Lanczos and stochastic Lanczos
quadrature (:mod:`.spectrum`) and the statistics of the claims (:mod:`.stats`).  Each returns plain typed results; nothing here draws or prints."""
