"""The analysis pack: measurements, colours, similarity, edges and faces (on scikit-image's astronaut)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter
from tests.nodes.helpers import noise, pixels, quadrants, ramp, run_graph, run_node

from nodeloom.engine.errors import NodeError

skimage_data = pytest.importorskip("skimage.data")
skimage_metrics = pytest.importorskip("skimage.metrics")

#: where Eileen Collins' face is in skimage's astronaut (512x512), measured by hand: x, y, width, height
FACE = (180, 70, 85, 90)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(skimage_data.astronaut())


def overlap(box: dict[str, Any], reference: tuple[int, int, int, int]) -> float:
    """Intersection over union of a {x, y, width, height} box and an (x, y, w, h) tuple."""
    ax, ay, aw, ah = box["x"], box["y"], box["width"], box["height"]
    bx, by, bw, bh = reference
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    return iw * ih / (aw * ah + bw * bh - iw * ih)


def sharpness(img: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Variance of the Laplacian over a region: high for detail, near zero for a blur."""
    grey = pixels(img.convert("L").crop(box).filter(ImageFilter.FIND_EDGES))
    return float(grey[1:-1, 1:-1].var())


async def test_info() -> None:
    out = await run_node("image.info", {"image": Image.new("RGBA", (300, 200))})
    assert out["width"] == 300 and out["height"] == 200
    assert out["info"] == {"width": 300, "height": 200, "mode": "RGBA", "hasAlpha": True, "aspectRatio": 1.5,
                           "megapixels": 0.06, "format": None}


async def test_info_sizes_drive_other_nodes() -> None:
    graph = {"nodes": [
        {"id": "src", "type": "test.value", "params": {"name": "src"}},
        {"id": "info", "type": "image.info", "inputs": {"image": {"from": "src", "output": "value"}}},
        {"id": "area", "type": "math.multiply", "inputs": {"a": {"from": "info", "output": "width"},
                                                          "b": {"from": "info", "output": "height"}}},
    ]}
    assert (await run_graph(graph, {"src": ramp(64, 48)})).nodes["area"] == {"result": 64 * 48}


async def test_dominant_colors_in_order_of_share() -> None:
    img = Image.new("RGB", (100, 100), (255, 0, 0))
    img.paste((0, 0, 255), (0, 50, 100, 80))
    img.paste((255, 255, 255), (0, 80, 100, 100))
    out = await run_node("image.dominant_colors", {"image": img}, {"count": 3})
    assert out["colors"] == ["#ff0000", "#0000ff", "#ffffff"]
    assert np.allclose(out["shares"], [0.5, 0.3, 0.2], atol=0.02)
    assert out == await run_node("image.dominant_colors", {"image": img}, {"count": 3})  # repeatable
    few = await run_node("image.dominant_colors", {"image": Image.new("RGB", (8, 8), "#123456")}, {"count": 5})
    assert few == {"colors": ["#123456"], "shares": [1.0]}


async def test_dominant_colors_ignore_transparent_pixels() -> None:
    img = Image.new("RGBA", (20, 20), (0, 255, 0, 0))
    img.paste((10, 20, 30, 255), (0, 0, 5, 20))
    assert (await run_node("image.dominant_colors", {"image": img}, {"count": 2}))["colors"] == ["#0a141e"]
    assert await run_node("image.dominant_colors", {"image": Image.new("RGBA", (4, 4))}) == {"colors": [],
                                                                                               "shares": []}


async def test_similarity_matches_scikit_image_ssim(astronaut: Image.Image) -> None:
    reference = astronaut.resize((128, 128)).convert("L")
    rng = np.random.default_rng(1)
    noisy = Image.fromarray(np.clip(pixels(reference) + rng.normal(0, 25, (128, 128)), 0, 255).astype(np.uint8))
    same = await run_node("image.similarity", {"a": reference, "b": reference})
    assert same["score"] == pytest.approx(1.0, abs=1e-9) and pixels(same["difference"]).max() == 0
    out = await run_node("image.similarity", {"a": reference, "b": noisy})
    expected = skimage_metrics.structural_similarity(np.asarray(reference), np.asarray(noisy), gaussian_weights=True,
                                                     sigma=1.5, use_sample_covariance=False, data_range=255)
    assert out["score"] == pytest.approx(expected, abs=0.02) and out["score"] < 0.8
    blurred = await run_node("image.similarity", {"a": reference, "b": reference.filter(ImageFilter.GaussianBlur(1))})
    assert out["score"] < blurred["score"] < 1


async def test_similarity_maps_where_images_differ() -> None:
    a = noise(64, 64, seed=2)
    b = a.copy()
    b.paste((0, 0, 0), (40, 40, 60, 60))
    out = await run_node("image.similarity", {"a": a, "b": b.resize((128, 128), Image.Resampling.NEAREST)})
    diff = pixels(out["difference"])
    assert diff.shape == (64, 64)
    assert diff[44:56, 44:56].mean() > 150 and diff[:30, :30].mean() < 10


async def test_canny_finds_the_outline() -> None:
    img = Image.new("RGB", (64, 64), "black")
    img.paste((255, 255, 255), (16, 16, 48, 48))
    edges = pixels((await run_node("image.canny", {"image": img}))["edges"])
    assert edges[20:44, 20:44].max() == 0 and edges[:10].max() == 0
    assert edges[15:18, 20:44].max(axis=0).min() == 255  # the top side is traced all along
    with pytest.raises(NodeError, match="must not exceed"):
        await run_node("image.canny", {"image": img}, {"low": 300, "high": 100})


async def test_face_detect_finds_the_astronaut(astronaut: Image.Image) -> None:
    out = await run_node("image.face_detect", {"image": astronaut})
    assert out["count"] == len(out["faces"]) >= 1
    assert overlap(out["faces"][0], FACE) > 0.6
    assert await run_node("image.face_detect", {"image": quadrants(200)}) == {"faces": [], "count": 0}


async def test_face_detect_on_a_large_image_scales_boxes_back(astronaut: Image.Image) -> None:
    big = astronaut.resize((2048, 2048))
    face = (await run_node("image.face_detect", {"image": big}))["faces"][0]
    assert overlap(face, tuple(v * 4 for v in FACE)) > 0.6  # type: ignore[arg-type]


async def test_face_blur_hides_the_face_and_nothing_else(astronaut: Image.Image) -> None:
    out = await run_node("image.face_blur", {"image": astronaut})
    assert overlap(out["faces"][0], FACE) > 0.6
    face_box = (200, 90, 245, 145)
    assert sharpness(out["image"], face_box) < sharpness(astronaut, face_box) / 5
    assert np.array_equal(pixels(out["image"])[300:], pixels(astronaut)[300:])
    pixelated = await run_node("image.face_blur", {"image": astronaut}, {"mode": "pixelate", "strength": 1})
    block = pixels(pixelated["image"])[105:125, 210:230]
    assert len(np.unique(block.reshape(-1, 3), axis=0)) < 10


async def test_face_blur_uses_given_boxes() -> None:
    img = noise(100, 100)
    box = {"x": 30, "y": 30, "width": 40, "height": 40}
    out = await run_node("image.face_blur", {"image": img, "faces": [box]}, {"padding": 0})
    assert out["faces"] == [box]
    assert pixels(out["image"])[40:60, 40:60].std() < pixels(img)[40:60, 40:60].std() / 3
    assert np.array_equal(pixels(out["image"])[:25], pixels(img)[:25])


async def test_detected_faces_feed_a_mask(astronaut: Image.Image) -> None:
    graph = {"nodes": [
        {"id": "src", "type": "test.value", "params": {"name": "src"}},
        {"id": "faces", "type": "image.face_detect", "inputs": {"image": {"from": "src", "output": "value"}}},
        {"id": "mask", "type": "mask.from_boxes", "inputs": {"image": {"from": "src", "output": "value"},
                                                            "boxes": {"from": "faces", "output": "faces"}}},
    ]}
    mask = pixels((await run_graph(graph, {"src": astronaut})).nodes["mask"]["mask"])
    assert mask[115, 222] == 255 and mask[400, 100] == 0


async def test_smart_crop_keeps_the_face(astronaut: Image.Image) -> None:
    wide = Image.new("RGB", (1536, 512), (128, 128, 128))
    wide.paste(astronaut, (1024, 0))
    out = await run_node("image.smart_crop", {"image": wide}, {"width": 256, "height": 256})
    crop = out["crop"]
    assert out["image"].size == (256, 256) and crop["width"] == crop["height"] == 512
    assert crop["x"] <= 1024 + FACE[0] and crop["x"] + 512 >= 1024 + FACE[0] + FACE[2]
    assert len(out["faces"]) >= 1
    tall = await run_node("image.smart_crop", {"image": astronaut}, {"width": 100, "height": 300})
    box = tall["crop"]
    assert tall["image"].size == (100, 300) and box["height"] == 512 and box["width"] == 171
    assert box["x"] <= FACE[0] and box["x"] + box["width"] >= FACE[0] + FACE[2]


async def test_smart_crop_without_faces_follows_the_detail() -> None:
    canvas = Image.new("RGB", (600, 200), (90, 90, 90))
    canvas.paste(noise(120, 120, seed=4), (460, 40))
    out = await run_node("image.smart_crop", {"image": canvas}, {"width": 200, "height": 200})
    assert out["faces"] == [] and out["crop"]["x"] >= 380
    flat = await run_node("image.smart_crop", {"image": Image.new("RGB", (600, 200))}, {"width": 200, "height": 200})
    assert flat["crop"] == {"x": 200, "y": 0, "width": 200, "height": 200}
