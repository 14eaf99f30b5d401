"""Floor 7, command line, in layers (import-linter's second contract): :mod:`.main` parses
``python -m landscape_core`` and hands each command of :mod:`.commands` its arguments; they use
:mod:`.runs` (submitit), :mod:`.dryrun`, :mod:`.lab` and :mod:`.bench` (``make bench``), which use the
notebook runner (:mod:`.runner`: papermill, references, variants), which uses the params loader
(:mod:`.params`); :mod:`.jobs` (what runs inside a job), :mod:`.scheduler`, :mod:`.watch` and
:mod:`.levers` sit beside it."""
