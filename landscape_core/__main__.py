"""``python -m landscape_core ...``: the notebook runner (see :mod:`landscape_core.cli.main`)."""
import sys

from .cli.main import main

sys.exit(main())
