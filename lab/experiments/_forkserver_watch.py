"""Imported once by the forkserver of ``lab.experiments.workers.local_pool`` (its preload), and never elsewhere: from
then on every process that forkserver forks watches the process that started it, from its first
instruction (``lab.experiments.workers.watch_from_the_forkserver``), and never runs that process's ``__main__``
(``lab.experiments.workers.forget_the_parents_main``)."""
from .workers import forget_the_parents_main, watch_from_the_forkserver

watch_from_the_forkserver()
forget_the_parents_main()
