"""Floor 6, report: what a reader sees - figures in the paper's layout and one style (:mod:`.plots`),
the one table writer (:mod:`.tables`), the paper's Table 1 beside ours (:mod:`.paper`), the claims
and their verdicts (:mod:`.claims`), and the notebook entry point :func:`~.notebook.start`."""
