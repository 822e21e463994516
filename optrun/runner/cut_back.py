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
from collections.abc import Iterator
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
        try:
            tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
            os.replace(tmp, path)
        except BaseException:  # a full disk, a signal: no half file is left behind
            tmp.unlink(missing_ok=True)
            raise
    return last


def cut_events(folder: Path, step: int) -> None:
    """Drops the summaries after ``step`` from every TensorBoard event file under ``folder``.

    Files are read as a stream, twice at most: once to find whether anything is to drop, and
    then copied without it, through a temporary file that a failed copy removes (and that a
    later resume removes, should a kill leave one).
    """
    if not folder.is_dir():
        return
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    for leftover in folder.rglob(".events.out.tfevents.*.tmp"):  # a copy a kill cut short
        leftover.unlink(missing_ok=True)

    def kept(path: Path) -> Iterator[bytes | None]:
        """Each record to keep; None for one to drop, or where a kill tore the file."""
        try:
            for record in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
                event = event_pb2.Event.FromString(record)
                yield None if event.HasField("summary") and event.step > step else record
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
            yield None  # a record torn by the kill: the whole ones before it are kept

    for path in sorted(folder.rglob("events.out.tfevents.*")):
        if all(record is not None for record in kept(path)):
            continue
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with tf.io.TFRecordWriter(str(tmp)) as writer:
                for record in kept(path):
                    if record is not None:
                        writer.write(record)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
