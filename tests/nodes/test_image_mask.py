"""The mask pack: masks made from alpha, colours and boxes, reshaped and combined."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tests.nodes.helpers import disc_mask, pixels, ramp, run_graph, run_node

from nodeloom.engine.errors import NodeError


async def mask_of(node_type: str, inputs: dict[str, object], **params: object) -> np.ndarray:
    out = (await run_node(node_type, inputs, params))["mask"]
    assert out.mode == "L"
    return pixels(out)


def area(mask: np.ndarray) -> int:
    return int((mask >= 128).sum())


async def test_invert() -> None:
    mask = disc_mask(64, 16)
    assert np.array_equal(await mask_of("mask.invert", {"mask": mask}), 255 - pixels(mask))


async def test_an_rgb_image_works_as_a_mask() -> None:
    out = await mask_of("mask.invert", {"mask": Image.new("RGB", (4, 4), (255, 255, 255))})
    assert out.max() == 0


async def test_grow_and_shrink_move_the_edge_by_the_radius() -> None:
    mask = disc_mask(96, 20)
    grown = await mask_of("mask.grow", {"mask": mask}, radius=5)
    shrunk = await mask_of("mask.shrink", {"mask": mask}, radius=5)
    assert abs(area(grown) - np.pi * 25**2) < 0.05 * np.pi * 25**2
    assert abs(area(shrunk) - np.pi * 15**2) < 0.06 * np.pi * 15**2
    assert ((pixels(mask) >= 128) <= (grown >= 128)).all() and ((shrunk >= 128) <= (pixels(mask) >= 128)).all()


async def test_feather_softens_the_edge_only() -> None:
    soft = await mask_of("mask.feather", {"mask": disc_mask(96, 24)}, radius=4)
    assert soft[48, 48] == 255 and soft[0, 0] == 0
    assert ((soft > 10) & (soft < 245)).sum() > 200
    assert abs(area(soft) - np.pi * 24**2) < 0.05 * np.pi * 24**2


async def test_from_alpha() -> None:
    img = ramp(32, 32).convert("RGBA")
    img.putalpha(disc_mask(32, 10))
    assert np.array_equal(await mask_of("mask.from_alpha", {"image": img}), pixels(disc_mask(32, 10)))
    assert (await mask_of("mask.from_alpha", {"image": ramp()})).min() == 255


async def test_from_color_keys_a_green_screen() -> None:
    img = Image.new("RGB", (40, 40), (20, 240, 30))
    img.paste((200, 120, 90), (10, 10, 30, 30))
    mask = await mask_of("mask.from_color", {"image": img}, color="#00ff00", tolerance=60)
    assert mask[:10].min() == 255 and mask[10:30, 10:30].max() == 0
    strict = await mask_of("mask.from_color", {"image": img}, color="#00ff00", tolerance=10)
    assert strict.max() == 0


@pytest.mark.parametrize(("op", "expected"), [("union", 3), ("intersect", 1), ("subtract", 1), ("difference", 2)])
async def test_combine(op: str, expected: int) -> None:
    left, top = Image.new("L", (20, 20), 0), Image.new("L", (20, 20), 0)
    left.paste(255, (0, 0, 10, 20))
    top.paste(255, (0, 0, 20, 10))
    out = await mask_of("mask.combine", {"a": left, "b": top}, op=op)
    assert area(out) == expected * 100  # in quarters of 10x10


async def test_combine_resizes_b_to_a() -> None:
    out = await mask_of("mask.combine", {"a": Image.new("L", (20, 20), 0), "b": Image.new("L", (5, 5), 255)})
    assert out.shape == (20, 20) and out.min() == 255


async def test_from_boxes_draws_rectangles_and_ellipses() -> None:
    img = Image.new("RGB", (100, 80))
    boxes = [{"x": 10, "y": 10, "width": 20, "height": 30}, {"x": 60, "y": 40, "width": 30, "height": 30}]
    rect = await mask_of("mask.from_boxes", {"image": img, "boxes": boxes})
    assert rect.shape == (80, 100) and area(rect) == 20 * 30 + 30 * 30
    assert rect[10:40, 10:30].min() == 255 and rect[9, 10] == 0
    oval = await mask_of("mask.from_boxes", {"image": img, "boxes": boxes}, shape="ellipse")
    assert abs(area(oval) - np.pi * (10 * 15 + 15 * 15)) < 40
    middle = [{"x": 40, "y": 30, "width": 20, "height": 10}]
    padded = await mask_of("mask.from_boxes", {"image": img, "boxes": middle}, padding=0.5)
    assert area(padded) == 40 * 20 and padded[25:45, 30:70].min() == 255
    clipped = await mask_of("mask.from_boxes", {"image": img, "boxes": boxes[:1]}, padding=0.5)
    assert area(clipped) == 40 * 55  # the padded box runs off the top edge
    soft = await mask_of("mask.from_boxes", {"image": img, "boxes": boxes[:1]}, feather=3)
    assert ((soft > 10) & (soft < 245)).sum() > 50


async def test_from_boxes_refuses_malformed_boxes() -> None:
    with pytest.raises(NodeError, match=r"boxes\[1\] must be an object"):
        await run_node("mask.from_boxes", {"image": Image.new("L", (8, 8)),
                                           "boxes": [{"x": 1, "y": 1, "width": 2, "height": 2}, {"x": 1}]})


async def test_a_mask_chain_feeds_a_composite() -> None:
    """from_color → grow → feather → composite: the keyed subject lands on a new background."""
    subject = Image.new("RGB", (64, 64), (0, 255, 0))
    subject.paste((250, 250, 250), (16, 16, 48, 48))
    graph = {"nodes": [
        {"id": "src", "type": "test.value", "params": {"name": "src"}},
        {"id": "bg", "type": "image.solid", "params": {"width": 64, "height": 64, "color": "#000080"}},
        {"id": "screen", "type": "mask.from_color", "inputs": {"image": {"from": "src", "output": "value"}}},
        {"id": "keep", "type": "mask.invert", "inputs": {"mask": {"from": "screen", "output": "mask"}}},
        {"id": "soft", "type": "mask.feather", "inputs": {"mask": {"from": "keep", "output": "mask"}},
         "params": {"radius": 1}},
        {"id": "out", "type": "image.composite", "inputs": {"image": {"from": "bg", "output": "image"},
                                                           "overlay": {"from": "src", "output": "value"},
                                                           "mask": {"from": "soft", "output": "mask"}}},
    ]}
    out = pixels((await run_graph(graph, {"src": subject})).nodes["out"]["image"])
    assert out[32, 32].tolist() == [250, 250, 250] and out[2, 2].tolist() == [0, 0, 128]
    assert out[..., 1].max() < 252  # no green spill survives
