"""Running a scale-out worker as a service: SIGINT/SIGTERM finish the batch in hand,
commit it and leave the group; a broker that does not answer cannot keep the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.metrics import Metrics
from crowdwatch.streams.alerting.sinks import Dispatcher
from crowdwatch.streams.runtime.worker import CLOSE_TIMEOUT, BatchWorker

log = logging.getLogger("crowdwatch.worker")

STOP_GRACE = 5.0  # seconds from SIGTERM to giving up on an unresponsive broker
# Seconds from SIGTERM to leaving without the Kafka clients (when one of them ignores
# cancellation while its broker is gone): the state of a crash, which the changelog and
# committed offsets make safe, rather than a process that never exits. Within the
# "exits in seconds" bound the tests hold a worker to with its broker gone.
ABANDON_AFTER = STOP_GRACE + CLOSE_TIMEOUT + 1.0


def run_worker(config: CrowdwatchConfig, dispatcher: Dispatcher, metrics: Metrics) -> None:
    """Run until SIGTERM/SIGINT; finishes the batch in hand, commits, leaves the group."""

    async def main() -> None:
        worker = BatchWorker(config, dispatcher, metrics)
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(worker.run())

        def on_signal(sig: signal.Signals) -> None:
            log.info("%s received; finishing the batch in hand", sig.name)
            worker.stop()
            # A broker that does not answer must not keep the process: give up on it.
            loop.call_later(STOP_GRACE, task.cancel)
            loop.call_later(ABANDON_AFTER, abandon)

        def abandon() -> None:
            log.error("kafka clients did not close within %.0fs of the signal; exiting "
                      "without them (the next owner re-reads the uncommitted batch)",
                      ABANDON_AFTER)
            logging.shutdown()
            os._exit(0)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        metrics.describe_config(config, worker.engine.series())
        metrics.consumer_lag.labels(stage="worker").set(0)
        metrics.worker.latency_budget.set(config.kafka.max_latency)
        log.info("worker starting: %d rule(s), group %s", len(worker.engine.rules),
                 config.kafka.group, extra={"site": config.site.name})
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("worker stopped")

    try:
        asyncio.run(main())
    finally:
        dispatcher.close()
