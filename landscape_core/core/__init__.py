"""Floor 1, foundations: typed specs (:mod:`.spec`), atomic I/O and paths (:mod:`.io`), seeded
randomness (:mod:`.rng`), model modes (:mod:`.modes`), flat parameter vectors (:mod:`.params`) and
batching (:mod:`.batching`).  Nothing here knows about data sets, models, attacks or the paper."""
