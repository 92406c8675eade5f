"""The demo account `make run` creates once: an account, a key, a sample image and a published workflow."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from nodeloom.types import ALL_SCOPES

CREDENTIALS = "demo-credentials.json"


def sample_image() -> bytes:
    """A 640x400 gradient with shapes, drawn here so the demo needs no download."""
    im = Image.new("RGB", (640, 400))
    px = im.load()
    assert px is not None  # a new in-memory image is always loaded
    for y in range(400):
        for x in range(640):
            px[x, y] = (40 + x * 180 // 640, 60 + y * 120 // 400, 160)
    d = ImageDraw.Draw(im)
    d.ellipse((220, 110, 420, 310), fill=(250, 200, 60))
    d.rectangle((40, 300, 200, 380), fill=(30, 30, 30))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def demo_graph(file_id: str) -> dict[str, Any]:
    return {"nodes": [
        {"id": "photo", "type": "input.image", "params": {"name": "image", "default": file_id},
         "position": {"x": 0, "y": 0}},
        {"id": "size", "type": "input.integer", "params": {"name": "width", "default": 320, "min": 16, "max": 4096},
         "position": {"x": 0, "y": 160}},
        {"id": "title", "type": "input.text", "params": {"name": "title", "default": "nodeloom"},
         "position": {"x": 0, "y": 320}},
        {"id": "resize", "type": "image.resize", "inputs": {"image": {"from": "photo", "output": "image"}},
         "params": {"width": 320, "height": 320, "mode": "fit"}, "position": {"x": 300, "y": 0}},
        {"id": "caption", "type": "text.template", "inputs": {"text": {"from": "title", "output": "text"}},
         "params": {"template": "{{ text | upper }} demo: resized to fit 320x320"}, "position": {"x": 300, "y": 320}},
        {"id": "out_image", "type": "output.image", "inputs": {"image": {"from": "resize", "output": "image"}},
         "params": {"name": "image"}, "position": {"x": 600, "y": 0}},
        {"id": "out_caption", "type": "output.text", "inputs": {"text": {"from": "caption", "output": "text"}},
         "params": {"name": "caption"}, "position": {"x": 600, "y": 320}},
    ]}


def poster_graph(file_id: str) -> dict[str, Any]:
    """The offline-models demo: cut out the subject, upscale it ×2, put it on a gradient, caption it."""
    return {"nodes": [
        {"id": "photo", "type": "input.image", "params": {"name": "image", "default": file_id},
         "position": {"x": 0, "y": 0}},
        {"id": "caption", "type": "input.text", "params": {"name": "caption", "default": "made offline with nodeloom"},
         "position": {"x": 0, "y": 240}},
        {"id": "small", "type": "image.resize", "inputs": {"image": {"from": "photo", "output": "image"}},
         "params": {"width": 320, "height": 320, "mode": "fit"}, "position": {"x": 260, "y": 0}},
        {"id": "cut", "type": "background.remove", "inputs": {"image": {"from": "small", "output": "image"}},
         "position": {"x": 520, "y": 0}},
        {"id": "up", "type": "upscale.realesrgan", "params": {"scale": 2},
         "inputs": {"image": {"from": "cut", "output": "image"}}, "position": {"x": 780, "y": 0}},
        {"id": "bg", "type": "image.gradient", "params": {"width": 640, "height": 400, "start": "#1d2b64",
                                                          "end": "#f8cdda", "direction": "diagonal"},
         "position": {"x": 780, "y": 240}},
        {"id": "comp", "type": "image.composite", "inputs": {"image": {"from": "bg", "output": "image"},
                                                             "overlay": {"from": "up", "output": "image"}},
         "position": {"x": 1040, "y": 100}},
        {"id": "text", "type": "image.text_overlay", "params": {"size": 36, "strokeWidth": 2},
         "inputs": {"image": {"from": "comp", "output": "image"}, "text": {"from": "caption", "output": "text"}},
         "position": {"x": 1300, "y": 100}},
        {"id": "out", "type": "output.image", "inputs": {"image": {"from": "text", "output": "image"}},
         "params": {"name": "poster"}, "position": {"x": 1560, "y": 100}},
    ]}


def _available(rt: Any, types: list[str]) -> bool:
    return all(rt.registry.get(t) is not None and rt.registry.unavailable_reason(t) is None for t in types)


def ensure_demo(rt: Any) -> dict[str, Any]:
    """Create the demo once; on later starts read back and return the same credentials."""
    path = Path(rt.settings.data_dir) / CREDENTIALS
    if path.exists():
        creds: dict[str, Any] = json.loads(path.read_text())
        try:
            rt.accounts.authenticate(creds["apiKey"])
            return {**creds, "path": str(path.resolve())}
        except Exception:  # the database was reset: make a new demo
            pass
    account = rt.accounts.create_account(name="Demo", plan="pro", credits=1000)
    _row, token = rt.accounts.create_key(account_id=account.id, name="demo", scopes=list(ALL_SCOPES))
    stored = rt.files.store(account_id=account.id, data=sample_image(), content_type="image/png", name="sample.png")
    wf = rt.workflows.create(account_id=account.id, name="Resize and caption",
                             description="Resizes the sample image (or yours) and writes a caption.",
                             graph=demo_graph(stored.id))
    rt.workflows.publish(account_id=account.id, workflow_id=wf["id"])
    creds = {"accountId": account.id, "apiKey": token, "workflowId": wf["id"], "sampleFileId": stored.id}
    if _available(rt, ["background.remove", "upscale.realesrgan"]):  # the offline models are installed
        poster = rt.workflows.create(account_id=account.id, name="Offline poster",
                                     description="Background removal, Real-ESRGAN ×2, a gradient and a caption — "
                                                 "all with models that run on this machine.",
                                     graph=poster_graph(stored.id))
        rt.workflows.publish(account_id=account.id, workflow_id=poster["id"])
        creds["posterWorkflowId"] = poster["id"]
    creds.update(rt.users.demo_user(account.id))  # the demo account's person (dashboard sign-in)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f, indent=2)
    os.chmod(path, 0o600)
    return {**creds, "path": str(path.resolve())}
