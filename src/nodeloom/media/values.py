"""Live media values that flow between nodes inside one execution.

- `image` and `mask` ports carry `PIL.Image.Image` objects (masks in mode "L"), decoded once and passed
  by reference; they are encoded only when they become an output or a cache entry.
- `video`, `audio` and `file` ports carry `MediaFile`: a file on local disk (the execution's work dir,
  or the blob store) plus its content type.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the marker a stored media value takes inside persisted JSON (node outputs, execution outputs)
FILE_MARKER = "$file"


@dataclass(frozen=True)
class MediaFile:
    path: Path
    content_type: str
    file_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def from_path(cls, path: str | Path, content_type: str | None = None, **meta: Any) -> MediaFile:
        p = Path(path)
        ctype = content_type or mimetypes.guess_type(p.name)[0] or "application/octet-stream"
        return cls(path=p, content_type=ctype, meta=meta)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    @property
    def size(self) -> int:
        return self.path.stat().st_size
