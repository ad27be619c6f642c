"""Use cases: the one package that combines the ledger, the catalog, the channels and the queue.

HTTP handlers, pollers and RQ jobs call :class:`Engine`; none of them talks to two of those
parts itself. One module per job:

* :mod:`.events`: marketplace events (webhooks, polls) are queued first, into the inbox
  stream, so a webhook answers in milliseconds; :mod:`.inbox_drain`: workers apply them in
  batches, thousands a second, and an event that fails in a batch gets its own RQ job with
  retries.
* :mod:`.storefront`: storefront calls (reservations, counts) apply at once: the shop needs
  the answer.
* :mod:`.recording`: the log line, counters and order log of each applied event, and the
  announcement of an oversell.
* :mod:`.channels`: each channel's client and publisher, built once per process.
* :mod:`.engines`: one engine per seller account of the deployment.
* :mod:`.engine`: builds all of it from the settings and wires it together. Every change that
  may alter a channel's number schedules that channel's push job, guarded so that a burst of
  changes schedules one job, never zero (the job clears the guard before it claims, so a
  change that lands while it runs schedules the next one).
"""

from inventory_engine.service.engine import EVENTS_QUEUE, PUSH_QUEUE, Engine
from inventory_engine.service.engines import Engines
from inventory_engine.service.serialization import event_outcome, order_from_dict, order_to_dict

__all__ = [
    "EVENTS_QUEUE",
    "PUSH_QUEUE",
    "Engine",
    "Engines",
    "event_outcome",
    "order_from_dict",
    "order_to_dict",
]
