"""Read recorded feeds for replay: JSONL events, count or sensor CSV, wide counter tables.

Formats, chosen by extension and header:
- ``*.jsonl``: one event per line in wire form (count, health, sensor) or a sensor
  reading ``{"sensor_id", "ts", "value"}``.
- CSV with ``ts,zone_id,count`` (optional ``camera_id``, ``density_ppm2``): camera counts.
- CSV with ``ts,sensor_id,value`` (optional ``kind``): sensor readings.
- CSV with ``date,hour,...`` then one column per sensor (the Auckland pedestrian counts):
  one reading per sensor-hour, stamped at the end of the hour (when the count is
  known) in the site's time zone. Columns map to sensors by ``sensors.devices[].name``
  (or id); empty cells are gaps, not zeros.

Rows that cannot be read are handed to ``reject`` with ``file:line`` and never stop
the replay.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crowdwatch.config import CrowdwatchConfig
from crowdwatch.errors import UsageError
from crowdwatch.events import CountEvent, EventError, event_from_dict, parse_ts
from crowdwatch.ingest.sensor_messages import SensorMessageParser

Reject = Callable[[str, str, str, bytes | str | None], None]


class RecordedFeed:
    """Iterate the events of one recorded file, in file order."""

    def __init__(self, path: str | Path, config: CrowdwatchConfig, reject: Reject) -> None:
        self.path = Path(path)
        self.config = config
        self.reject = reject
        self.parser = SensorMessageParser(config.sensors.model_copy(
            update={"max_future": float("inf"), "max_past": float("inf")}))  # recorded: any age
        self.skipped_columns: list[str] = []
        self.repaired: list[str] = []  # rows whose date label contradicted the sequence
        if not self.path.is_file():
            raise UsageError(f"replay input {self.path} does not exist")

    def __iter__(self) -> Iterator[Any]:
        if self.path.suffix in (".jsonl", ".ndjson", ".json"):
            yield from self._jsonl()
            return
        with self.path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            if header[:2] == ["date", "hour"]:
                yield from self._wide(reader, header)
            elif {"ts", "zone_id", "count"} <= set(header):
                yield from self._rows(reader, header, self._count_row)
            elif {"ts", "sensor_id", "value"} <= set(header):
                yield from self._rows(reader, header, self._sensor_row)
            else:
                raise UsageError(f"{self.path}:1: unknown CSV header {header[:6]}; expected "
                                 "ts,zone_id,count | ts,sensor_id,value | date,hour,<sensors>")

    def _where(self, line: int) -> str:
        return f"{self.path}:{line}"

    def _jsonl(self) -> Iterator[Any]:
        with self.path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    if isinstance(data, dict) and "type" not in data:
                        yield self.parser.reading(data)
                    else:
                        yield event_from_dict(data)
                except ValueError as exc:
                    reason = exc.reason if isinstance(exc, EventError) else "bad_json"
                    self.reject(self._where(line_no), reason, str(exc), line.rstrip("\n"))

    def _rows(self, reader, header: list[str], make) -> Iterator[Any]:
        for line_no, row in enumerate(reader, 2):
            if not row:
                continue
            try:
                if len(row) != len(header):
                    raise EventError("bad_row", f"{len(row)} fields, header has {len(header)}")
                yield make(dict(zip(header, row, strict=True)))
            except (EventError, ValueError) as exc:
                reason = exc.reason if isinstance(exc, EventError) else "bad_field"
                self.reject(self._where(line_no), reason, str(exc), ",".join(row))

    def _count_row(self, row: dict[str, str]) -> CountEvent:
        density = row.get("density_ppm2") or None
        return event_from_dict({"v": 1, "type": "count", "camera_id": row.get("camera_id", ""),
                                "zone_id": row["zone_id"], "ts": _ts(row["ts"]),
                                "count": float(row["count"]),
                                "density_ppm2": float(density) if density else None})

    def _sensor_row(self, row: dict[str, str]) -> Any:
        item: dict[str, Any] = {"sensor_id": row["sensor_id"], "ts": _ts(row["ts"]),
                                "value": float(row["value"])}
        if row.get("kind"):
            item["kind"] = row["kind"]
        return self.parser.reading(item)

    def _wide(self, reader, header: list[str]) -> Iterator[Any]:
        by_name = {d.name or d.id: d.id for d in self.config.sensors.devices}
        by_name.update({d.id: d.id for d in self.config.sensors.devices})
        columns = [(i, by_name[name]) for i, name in enumerate(header) if name in by_name]
        self.skipped_columns = [h for h in header[3:] if h not in by_name]
        zone = ZoneInfo(self.config.site.timezone)
        previous: tuple[str, int] | None = None
        next_day = False
        last_ts: float | None = None
        for line_no, row in enumerate(reader, 2):
            try:
                hour = int(row[1].split(":", 1)[0])
                # Some tables list a "day" from 6:00 to 5:59: within one date label, an hour
                # lower than the one before belongs to the next calendar day.
                if previous is None or previous[0] != row[0]:
                    next_day = False
                elif hour < previous[1]:
                    next_day = True
                previous = (row[0], hour)
                start = _hour_start(row[0], hour, zone) + timedelta(days=next_day)
            except (ValueError, IndexError) as exc:
                self.reject(self._where(line_no), "bad_row", str(exc), ",".join(row))
                continue
            ts = start.timestamp() + 3600.0  # stamped when the hour is complete
            if last_ts is not None and ts != last_ts + 3600:
                # A mislabelled date (seen in real exports): when the hour column continues
                # the sequence, trust the sequence; a real gap keeps its own time.
                expected = datetime.fromtimestamp(last_ts, zone)
                if expected.hour == hour and abs(ts - last_ts) <= 7 * 86400:
                    ts = last_ts + 3600
                    self.repaired.append(self._where(line_no))
            last_ts = ts
            for index, sensor_id in columns:
                cell = row[index].strip() if index < len(row) else ""
                if not cell:
                    continue  # a gap in the record, not zero people
                try:
                    yield self.parser.reading({"sensor_id": sensor_id, "ts": ts,
                                               "value": float(cell)})
                except (EventError, ValueError) as exc:
                    reason = exc.reason if isinstance(exc, EventError) else "bad_field"
                    self.reject(f"{self._where(line_no)} [{header[index]}]", reason, str(exc),
                                cell)


def _ts(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return parse_ts(text, "ts")


def _hour_start(date: str, hh: int, zone: ZoneInfo) -> datetime:
    """'2019-01-01', hour 6 in local time → aware datetime of the hour's start."""
    day = datetime.strptime(date, "%Y-%m-%d")
    # fold=0: in the repeated hour at the end of daylight saving, the first occurrence.
    return day.replace(hour=hh, tzinfo=zone)
