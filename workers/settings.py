"""Worker settings, recorded here as STYLE asks.

* ``SimpleWorker``: jobs run in the worker process itself — no fork per job (a forking worker
  costs ~13 ms a job here against ~4 ms), and the Engine with its HTTP clients is built once.
* One queue per worker on the hot path: ``serve`` gives the first worker the events queue and
  the next the push queue, so RQ moves each job atomically with BLMOVE from one queue.
* ``MAINTENANCE_INTERVAL_S``: how often a worker looks for jobs of dead workers (their
  StartedJobRegistry entries). RQ 3 finds a dead SimpleWorker's job only after its
  ``job_timeout`` + 60 s; what the job was doing is not lost meanwhile: events it held stay
  unacknowledged in the inbox and are taken over after 30 s; SKUs a push held are leased (4 ×
  the channel's request timeout + 10 s), then pushed again.
* The scheduler runs in every worker (``with_scheduler``): it re-queues event jobs whose retry
  time has come. Pushes held by Ozon's 30 s item window are woken by ``serve`` itself
  (``Engine.wake_due_pushes``, every 50 ms): RQ's scheduler works in whole seconds.
* A push job only starts the channel's sender thread in the worker (``sync/sender.py``); the
  worker class is ``worker.EngineWorker``.
"""

from __future__ import annotations

MAINTENANCE_INTERVAL_S = 30
WITH_SCHEDULER = True
