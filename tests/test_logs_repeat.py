"""Library log floods are limited: one line per message per window, with a count."""

from __future__ import annotations

import io
import logging

from crowdwatch.logs import LogfmtFormatter, RepeatLimit, setup_logging


def test_repeat_limit_shows_a_message_once_per_window_and_counts_the_rest(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("crowdwatch.logs.time.monotonic", lambda: clock[0])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    handler.addFilter(RepeatLimit(10.0))
    log = logging.getLogger("test.repeat")
    log.handlers[:] = [handler]
    log.propagate = False
    for _ in range(5000):  # a retry loop with no backoff
        log.error("Unable connect to node with id %s", 1)
    log.error("Unable to update metadata from %s", [1])  # another message: shown
    clock[0] += 10.5
    log.error("Unable connect to node with id %s", 1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert "repeats_suppressed" not in lines[0] and "metadata" in lines[1]
    assert lines[2].endswith("repeats_suppressed=4999")


def test_setup_logging_puts_aiokafka_through_the_limit_in_our_format(capsys):
    saved = {name: (lg.handlers[:], lg.level, lg.propagate) for name, lg in
             ((n, logging.getLogger(n)) for n in ("crowdwatch", "aiokafka"))}
    try:
        setup_logging("info", "logfmt", library_repeat_s=60.0)
        kafka = logging.getLogger("aiokafka.client")
        for _ in range(1000):
            kafka.error("Unable to update metadata from %s", [1])
        kafka.info("not shown: libraries speak at warning and above")
        err = capsys.readouterr().err.splitlines()
    finally:  # later tests log through the handlers they had
        for name, (handlers, level, propagate) in saved.items():
            lg = logging.getLogger(name)
            lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
    assert len(err) == 1 and err[0].startswith("ts=") and "logger=aiokafka.client" in err[0]
