"""Read back what wandb wrote: an offline run's records (its ``run-ID.wandb`` file), for tests to assert on.

wandb (0.31) writes an offline run's config, history and summary only into that file (no ``files/config.yaml``),
and its own reader moved into its Go core. The file is LevelDB's log format (32 KiB blocks of records, each a
7-byte header: crc32, length, kind) after a 7-byte ``:W&B`` header; each record a protobuf ``Record``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class WandbRun:
    id: str
    name: str
    project: str
    group: str
    config: dict[str, Any] = field(default_factory=dict)  # the run's config after every update
    history: list[dict[str, Any]] = field(default_factory=list)  # the logged rows, in order


def _records(data: bytes) -> list[bytes]:
    assert data[:4] == b":W&B", "not a wandb run file"
    records, pos, pieces = [], HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        pieces = chunk if kind in (FULL, FIRST) else pieces + chunk
        if kind in (FULL, LAST):
            records.append(pieces)
    return records


def _item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_run(offline_run: Path) -> WandbRun:
    """The run in ``offline_run`` (a ``wandb/offline-run-*`` folder)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = offline_run.glob("run-*.wandb")
    run: WandbRun | None = None
    for raw in _records(path.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info = record.run
            run = WandbRun(info.run_id, info.display_name, info.project, info.run_group)
            run.config.update({_item_key(i): json.loads(i.value_json) for i in info.config.update})
        elif kind == "config" and run is not None:
            run.config.update({_item_key(i): json.loads(i.value_json) for i in record.config.update})
        elif kind == "history" and run is not None:
            run.history.append({_item_key(i): json.loads(i.value_json) for i in record.history.item})
    assert run is not None, f"no run record in {path}"
    return run
