"""From a pretraining checkpoint to a table of transfer results: the
protocol files (``configs/benchmarks/protocols/*.yml``, :mod:`.protocols`),
the run config of one trial (:mod:`.leaf_config`) and the table
(:mod:`.results`), used by ``tools/benchmarks/transfer.py``."""
