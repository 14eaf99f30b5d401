"""Floor 7, command line: the notebook runner behind the Makefile (:mod:`.runner`, also
``python -m landscape_core``) and ``make bench`` (:mod:`.bench`)."""
