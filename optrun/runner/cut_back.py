"""Cutting a run's logs back to its checkpoint, for a resume: nothing logged twice.

A run killed after its last checkpoint has logged steps the resume will run
again. Before it starts, ``metrics.jsonl`` and TensorBoard's event files drop
what was logged after the restored step (and a record torn by the kill), so
each step appears once, with the values of the run that goes on::

    keep  <=>  line["step"] <= step        (metrics.jsonl)
    keep  <=>  not event.summary or event.step <= step      (event files)

A file with nothing to drop is left untouched; one with something to drop is
rewritten whole, through a temporary file and a rename.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def cut_metrics(path: Path, step: int) -> dict[str, Any] | None:
    """Drops the lines of ``path`` after ``step`` and any torn line; returns the last line kept."""
    if not path.is_file():
        return None
    kept, last, text = [], None, path.read_text(encoding="utf-8")
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill or a broken pipe
        if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
            kept.append(line)
            last = record
    if "".join(line + "\n" for line in kept) != text:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)
    return last


def cut_events(folder: Path, step: int) -> None:
    """Drops the summaries after ``step`` from every TensorBoard event file under ``folder``."""
    if not folder.is_dir():
        return
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    for path in sorted(folder.rglob("events.out.tfevents.*")):
        records, dropped = [], False
        try:
            for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
                event = event_pb2.Event.FromString(record)
                if event.HasField("summary") and event.step > step:
                    dropped = True
                else:
                    records.append(record)
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
            dropped = True  # a record torn by the kill: the whole ones before it are kept
        if dropped:
            tmp = path.with_name(f".{path.name}.tmp")
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for record in records:
                    writer.write(record)
            os.replace(tmp, path)
