"""The image pack (geometry and formats), run through the real executor with a process pool."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw
from tests.nodes.helpers import noise, pixels, quadrants, ramp, run_graph, run_node

from nodeloom.engine.errors import GraphError, NodeError


async def image_of(node_type: str, img: Image.Image, **params: object) -> Image.Image:
    return (await run_node(node_type, {"image": img}, params))["image"]


async def test_crop_in_pixels_and_percent() -> None:
    src = ramp(64, 48)
    out = await image_of("image.crop", src, x=10, y=5, width=20, height=10)
    assert out.size == (20, 10)
    assert np.array_equal(pixels(out), pixels(src)[5:15, 10:30])
    half = await image_of("image.crop", src, x=50, y=50, width=50, height=50, unit="percent")
    assert half.size == (32, 24) and np.array_equal(pixels(half), pixels(src)[24:, 32:])
    clipped = await image_of("image.crop", src, x=60, y=0, width=20, height=48)
    assert clipped.size == (4, 48)
    with pytest.raises(NodeError, match="outside the 64x48 image"):
        await image_of("image.crop", src, x=64, y=0, width=5, height=5)


async def test_crop_params_are_validated_before_running() -> None:
    with pytest.raises(GraphError) as invalid:
        await run_graph({"nodes": [{"id": "c", "type": "image.crop", "inputs": {"image": "f_1"},
                                    "params": {"x": -1, "unit": "inch"}}]})
    paths = {d["path"] for d in invalid.value.details}
    assert paths == {"nodes[0].params.x", "nodes[0].params.unit"}


async def test_pad_adds_coloured_bands() -> None:
    src = ramp(20, 10)
    out = await image_of("image.pad", src, top=3, right=4, bottom=5, left=6, color="#ff0000")
    assert out.size == (30, 18) and out.mode == "RGB"
    a = pixels(out)
    assert np.array_equal(a[3:13, 6:26], pixels(src))
    assert (a[:3] == [255, 0, 0]).all() and (a[13:] == [255, 0, 0]).all() and (a[:, :6] == [255, 0, 0]).all()
    clear = await image_of("image.pad", src, top=2, color="#00000000")
    assert clear.mode == "RGBA" and clear.size == (20, 12)
    assert (pixels(clear)[:2, :, 3] == 0).all() and (pixels(clear)[2:, :, 3] == 255).all()


async def test_pad_refuses_huge_results() -> None:
    with pytest.raises(NodeError, match="over the limit") as failure:
        await image_of("image.pad", ramp(10, 10), left=8192, right=8192)
    assert failure.value.code == "image_too_large"


async def test_quarter_turns_are_lossless() -> None:
    src = ramp(64, 48)
    out = await image_of("image.rotate", src, angle=90)
    assert out.size == (48, 64) and np.array_equal(pixels(out), np.rot90(pixels(src)))
    back = await image_of("image.rotate", src, angle=-90)
    assert np.array_equal(pixels(back), np.rot90(pixels(src), -1))
    half = await image_of("image.rotate", src, angle=180, expand=False)
    assert np.array_equal(pixels(half), pixels(src)[::-1, ::-1])


async def test_free_rotation_grows_the_canvas_and_fills_corners() -> None:
    src = Image.new("RGB", (60, 40), (200, 50, 50))
    out = await image_of("image.rotate", src, angle=45)
    side = (60 + 40) / np.sqrt(2)
    assert out.mode == "RGBA" and abs(out.width - side) <= 2 and abs(out.height - side) <= 2
    a = pixels(out)
    assert a[0, 0, 3] == 0 and a[out.height // 2, out.width // 2].tolist() == [200, 50, 50, 255]
    filled = await image_of("image.rotate", src, angle=30, expand=False, color="#0000ff")
    assert filled.size == (60, 40) and filled.mode == "RGB"
    assert pixels(filled)[0, 0].tolist() == [0, 0, 255]


@pytest.mark.parametrize(("direction", "flip"), [("horizontal", np.fliplr), ("vertical", np.flipud),
                                                 ("both", lambda a: a[::-1, ::-1])])
async def test_flip(direction: str, flip: object) -> None:
    src = quadrants(40)
    out = await image_of("image.flip", src, direction=direction)
    assert np.array_equal(pixels(out), flip(pixels(src)))  # type: ignore[operator]


async def test_fit_covers_and_keeps_the_chosen_side() -> None:
    src = ramp(64, 48)  # red rises to the right
    centre = await image_of("image.fit", src, width=24, height=24)
    left = await image_of("image.fit", src, width=24, height=24, position="left")
    right = await image_of("image.fit", src, width=24, height=24, position="right")
    assert centre.size == left.size == right.size == (24, 24)
    red = [pixels(i)[:, :, 0].mean() for i in (left, centre, right)]
    assert red[0] < 105 and 120 < red[1] < 135 and red[2] > 150
    assert pixels(left)[:, 0, 0].mean() < 10 and pixels(right)[:, -1, 0].mean() > 245


async def test_thumbnail_shrinks_but_never_enlarges() -> None:
    src = ramp(64, 48)
    assert (await image_of("image.thumbnail", src, width=32, height=32)).size == (32, 24)
    assert (await image_of("image.thumbnail", src, width=100, height=100)).size == (64, 48)


async def test_perspective_rectifies_a_quadrilateral() -> None:
    src = Image.new("RGB", (100, 100), "black")
    quad = [(20, 10), (80, 20), (90, 90), (10, 80)]
    ImageDraw.Draw(src).polygon(quad, fill="white")
    corners = [[x / 100, y / 100] for x, y in quad]
    out = await image_of("image.perspective", src, corners=corners, width=50, height=40)
    assert out.size == (50, 40)
    assert pixels(out)[2:-2, 2:-2].mean() > 250  # only the white quad, stretched to fill
    auto = await image_of("image.perspective", src, corners=corners)
    assert 70 <= auto.width <= 82 and 68 <= auto.height <= 82
    identity = await image_of("image.perspective", quadrants(40))
    assert np.abs(pixels(identity) - pixels(quadrants(40))).mean() < 3


@pytest.mark.parametrize("corners", [[[0, 0], [1, 0], [1, 1]], [[0, 0], [1, 0], [1, 1], [0, 2]],
                                     [[0, 0], [0.5, 0.5], [1, 1], [0.2, 0.2]], "square"])
async def test_perspective_refuses_bad_corners(corners: object) -> None:
    with pytest.raises(NodeError, match="corners"):
        await image_of("image.perspective", ramp(), corners=corners)


async def test_tiles_cut_row_by_row() -> None:
    src = noise(60, 40)
    tiles = (await run_node("image.tiles", {"image": src}, {"rows": 2, "columns": 3}))["tiles"]
    assert len(tiles) == 6 and all(t.size == (20, 20) for t in tiles)
    assert np.array_equal(pixels(tiles[4]), pixels(src)[20:40, 20:40])
    overlapped = (await run_node("image.tiles", {"image": src}, {"rows": 2, "columns": 3,
                  "overlap": 5}))["tiles"]
    assert [t.size for t in overlapped] == [(25, 25), (30, 25), (25, 25)] * 2
    with pytest.raises(NodeError, match="cannot be cut"):
        await run_node("image.tiles", {"image": noise(4, 4)}, {"rows": 5})


async def test_tiles_fan_out_and_grid_reassembles_them() -> None:
    src = noise(60, 40, seed=3)
    graph = {"nodes": [
        {"id": "src", "type": "test.value", "params": {"name": "src"}},
        {"id": "cut", "type": "image.tiles", "inputs": {"image": {"from": "src", "output": "value"}},
         "params": {"rows": 2, "columns": 3}},
        {"id": "neg", "type": "image.invert", "inputs": {"image": {"from": "cut", "output": "tiles"}}},
        {"id": "sheet", "type": "image.grid", "inputs": {"images": {"from": "neg", "output": "image"}},
         "params": {"columns": 3}},
    ]}
    result = await run_graph(graph, {"src": src})
    assert len(result.nodes["neg"]["image"]) == 6
    assert np.array_equal(pixels(result.nodes["sheet"]["image"]), 255 - pixels(src))


async def test_convert_really_compresses() -> None:
    src = noise(64, 64, seed=1).resize((128, 128))
    low = await run_node("image.convert", {"image": src}, {"format": "jpeg", "quality": 5})
    high = await run_node("image.convert", {"image": src}, {"format": "jpeg", "quality": 95})
    assert low["bytes"] < high["bytes"] / 2
    error = [np.abs(pixels(o["image"]) - pixels(src)).mean() for o in (low, high)]
    assert error[0] > 2 * error[1] > 0
    png = await run_node("image.convert", {"image": src}, {"format": "png"})
    assert np.array_equal(pixels(png["image"]), pixels(src))
    webp = await run_node("image.convert", {"image": src}, {"format": "webp", "quality": 50})
    assert webp["image"].size == (128, 128) and 0 < webp["bytes"] < high["bytes"]


async def test_convert_to_jpeg_flattens_transparency_onto_white() -> None:
    src = Image.new("RGBA", (16, 16), (255, 0, 0, 255))
    src.paste((0, 0, 0, 0), (0, 0, 8, 16))
    out = (await run_node("image.convert", {"image": src}, {"format": "jpeg", "quality": 95}))["image"]
    assert out.mode == "RGB"
    assert pixels(out)[:, :3].mean() > 245 and pixels(out)[:, -3:, 0].mean() > 240


async def test_strip_metadata_removes_exif_and_optionally_the_profile() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"  # Make
    buffer = io.BytesIO()
    ramp().save(buffer, "JPEG", exif=exif.tobytes(), icc_profile=b"fake-icc", comment=b"hello")
    with Image.open(buffer) as opened:
        opened.load()
        src = opened.copy()
        src.info = dict(opened.info)
    assert src.info.get("exif") and src.info.get("icc_profile") == b"fake-icc"
    out = await image_of("image.strip_metadata", src)
    assert "exif" not in out.info and "comment" not in out.info and out.info["icc_profile"] == b"fake-icc"
    assert len(out.getexif()) == 0
    assert np.array_equal(pixels(out), pixels(src))
    bare = await image_of("image.strip_metadata", src, keepColorProfile=False)
    assert "icc_profile" not in bare.info
    reencoded = io.BytesIO()
    bare.save(reencoded, "PNG")
    with Image.open(reencoded) as again:
        assert len(again.getexif()) == 0
