"""Node outputs ⇄ JSON: what the recorder persists for a node, and the live values a resumed run reads back.

Live values (Pillow images, `MediaFile`s) become stored files only where they must outlive the
execution — an output node's value, or a file that is already stored — and are otherwise described
(`{"type": "image", "width": …}`), which marks the node as not resumable: a retry runs it again.
Storage is injected (`OutputStore`), so this module knows nothing of accounts or databases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from PIL import Image

from nodeloom.media.values import FILE_MARKER, MediaFile


class OutputStore(Protocol):
    """Where one execution's media outputs are stored; each method returns the value's JSON marker."""

    def store_image(self, image: Image.Image, *, fmt: str) -> dict[str, Any]: ...

    def store_file(self, media: MediaFile) -> dict[str, Any]: ...

    def stored_marker(self, file_id: str) -> dict[str, Any] | None:
        """The marker of an already stored file (None when it is gone)."""
        ...


def serialize_outputs(outputs: Mapping[str, Any], *, persist_media: bool, image_format: str,
                      store: OutputStore) -> tuple[dict[str, Any], bool]:
    """JSON for a node's outputs and whether a resumed run may reuse them instead of running the node."""
    resumable = True

    def convert(value: Any) -> Any:
        nonlocal resumable
        if isinstance(value, Image.Image):
            if persist_media:
                return store.store_image(value, fmt=image_format)
            resumable = False
            return {"type": "image", "width": value.width, "height": value.height, "mode": value.mode}
        if isinstance(value, MediaFile):
            if persist_media or value.file_id:
                if value.file_id and not persist_media:
                    marker = store.stored_marker(value.file_id)
                    if marker is not None:
                        return marker
                return store.store_file(value)
            resumable = False
            return {"type": "file", "contentType": value.content_type, "size": value.size}
        if isinstance(value, dict):
            return {str(k): convert(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        resumable = False
        return repr(value)[:200]

    return {k: convert(v) for k, v in outputs.items()}, resumable


def live_value(value: Any, *, open_file: Callable[[str], Any]) -> Any:
    """Persisted JSON back to live values: every stored-file marker becomes `open_file(file_id)`."""
    if isinstance(value, dict) and FILE_MARKER in value:
        return open_file(value[FILE_MARKER])
    if isinstance(value, list):
        return [live_value(v, open_file=open_file) for v in value]
    return value
