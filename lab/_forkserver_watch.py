"""Imported once by the forkserver of ``lab.workers.local_pool`` (its preload), and never elsewhere: from
then on every process that forkserver forks watches the process that started it, from its first
instruction (``lab.workers.watch_from_the_forkserver``)."""
from .workers import watch_from_the_forkserver

watch_from_the_forkserver()
