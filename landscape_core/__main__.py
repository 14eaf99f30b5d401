"""``python -m landscape_core ...``: the notebook runner (see :mod:`landscape_core.cli.runner`)."""
import sys

from .cli.runner import main

sys.exit(main())
