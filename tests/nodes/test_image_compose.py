"""The composition pack: blending, pasting, generated images, text, watermarks, frames and grids."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from tests.nodes.helpers import disc_mask, pixels, quadrants, ramp, run_node

from nodeloom.engine.errors import NodeError

BASE = (200, 100, 50)
LAYER = (100, 200, 250)


def _expected(mode: str) -> list[float]:
    b, t = np.array(BASE) / 255, np.array(LAYER) / 255
    result = {
        "normal": t, "multiply": b * t, "screen": 1 - (1 - b) * (1 - t),
        "overlay": np.where(b < 0.5, 2 * b * t, 1 - 2 * (1 - b) * (1 - t)),
        "soft-light": (1 - 2 * t) * b * b + 2 * t * b, "add": np.minimum(1, b + t),
        "subtract": np.maximum(0, b - t), "difference": np.abs(b - t), "darken": np.minimum(b, t),
        "lighten": np.maximum(b, t),
    }[mode]
    return (result * 255).tolist()


@pytest.mark.parametrize("mode", ["normal", "multiply", "screen", "overlay", "soft-light", "add", "subtract",
                                  "difference", "darken", "lighten"])
async def test_blend_modes(mode: str) -> None:
    out = await run_node("image.blend", {"image": Image.new("RGB", (8, 8), BASE),
                                         "layer": Image.new("RGB", (4, 4), LAYER)}, {"mode": mode, "opacity": 1})
    assert out["image"].size == (8, 8)
    assert np.allclose(pixels(out["image"])[3, 3], _expected(mode), atol=1)


async def test_blend_opacity_and_layer_transparency() -> None:
    base, layer = Image.new("RGB", (8, 8), BASE), Image.new("RGB", (8, 8), LAYER)
    half = await run_node("image.blend", {"image": base, "layer": layer}, {"opacity": 0.5})
    assert np.allclose(pixels(half["image"])[0, 0], (np.array(BASE) + LAYER) / 2, atol=1)
    clear = Image.new("RGBA", (8, 8), (*LAYER, 0))
    untouched = await run_node("image.blend", {"image": base, "layer": clear}, {"opacity": 1})
    assert np.array_equal(pixels(untouched["image"]), pixels(base))


async def test_composite_pastes_at_an_offset() -> None:
    base = Image.new("RGB", (100, 100), "black")
    overlay = Image.new("RGB", (20, 20), (255, 0, 0))
    out = pixels((await run_node("image.composite", {"image": base, "overlay": overlay}, {"x": 10, "y": 30}))["image"])
    assert out[30:50, 10:30].tolist() == [[[255, 0, 0]] * 20] * 20
    assert out[:30].max() == 0 and out[50:].max() == 0
    clipped = pixels((await run_node("image.composite", {"image": base, "overlay": overlay},
                                     {"x": -15, "y": 95}))["image"])
    assert (clipped[95:, :5] == [255, 0, 0]).all() and clipped[95:, 5:].max() == 0


async def test_composite_through_a_mask_or_the_overlays_alpha() -> None:
    base = Image.new("RGB", (64, 64), "black")
    overlay = Image.new("RGB", (64, 64), (0, 255, 0))
    mask = disc_mask(64, 16)
    out = pixels((await run_node("image.composite", {"image": base, "overlay": overlay, "mask": mask}))["image"])
    assert np.array_equal(out[..., 1] > 127, pixels(mask) > 127)
    cut_out = overlay.convert("RGBA")
    cut_out.putalpha(mask)
    out = pixels((await run_node("image.composite", {"image": base, "overlay": cut_out}))["image"])
    assert np.array_equal(out[..., 1] > 127, pixels(mask) > 127)


async def test_composite_keeps_a_transparent_base_transparent() -> None:
    base = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    out = (await run_node("image.composite", {"image": base, "overlay": Image.new("RGB", (5, 5),
           "white")}))["image"]
    assert out.mode == "RGBA" and pixels(out)[0, 0, 3] == 255 and pixels(out)[9, 9, 3] == 0


async def test_apply_mask_sets_the_alpha_channel() -> None:
    mask = disc_mask(32, 8)
    out = (await run_node("image.apply_mask", {"image": ramp(64, 64), "mask": mask}))["image"]
    assert out.mode == "RGBA" and out.size == (64, 64)
    alpha = pixels(out)[..., 3]
    assert alpha[32, 32] == 255 and alpha[2, 2] == 0
    assert np.array_equal(pixels(out)[..., :3], pixels(ramp(64, 64)))


async def test_solid() -> None:
    out = (await run_node("image.solid", {}, {"width": 30, "height": 20, "color": "#336699"}))["image"]
    assert out.size == (30, 20) and out.mode == "RGB" and (pixels(out) == [0x33, 0x66, 0x99]).all()
    clear = (await run_node("image.solid", {}, {"width": 4, "height": 4, "color": "#ff000080"}))["image"]
    assert clear.mode == "RGBA" and pixels(clear)[0, 0].tolist() == [255, 0, 0, 128]
    with pytest.raises(NodeError, match="'reddish' is not a colour") as bad:
        await run_node("image.solid", {}, {"color": "reddish"})
    assert bad.value.code == "invalid_param"


async def test_gradients() -> None:
    params = {"width": 101, "height": 51, "start": "#000000", "end": "#ffffff"}
    across = pixels((await run_node("image.gradient", {}, {**params, "direction": "horizontal"}))["image"])[..., 0]
    assert across[:, 0].max() < 3 and across[:, -1].min() > 252 and (np.diff(across[0]) >= 0).all()
    assert (across == across[0]).all()
    down = pixels((await run_node("image.gradient", {}, {**params, "direction": "vertical"}))["image"])[..., 0]
    assert down[0].max() < 6 and down[-1].min() > 249 and (down[:, 0] == down[:, 50]).all()
    diagonal = pixels((await run_node("image.gradient", {}, {**params, "direction": "diagonal"}))["image"])[..., 0]
    assert diagonal[0, 0] < 5 and diagonal[-1, -1] > 250 and abs(diagonal[0, -1] - diagonal[-1, 0]) < 30
    radial = pixels((await run_node("image.gradient", {}, {**params, "direction": "radial", "width": 51}))["image"])
    assert radial[25, 25, 0] < 5 and radial[0, 0, 0] > 245


def changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.abs(pixels(after)[..., :3] - pixels(before)[..., :3]).sum(axis=-1) > 30


async def test_text_overlay_lands_where_asked() -> None:
    canvas = Image.new("RGB", (240, 120), (40, 40, 40))
    for position, rows in [("top", slice(0, 60)), ("bottom", slice(60, 120))]:
        out = (await run_node("image.text_overlay", {"image": canvas, "text": "Hello"},
                              {"position": position, "size": 24}))["image"]
        hit = changed(canvas, out)
        assert hit[rows].sum() > 50 and hit.sum() == hit[rows].sum(), position
        assert pixels(out).max() == 255  # white glyphs
        cols = np.where(hit.any(axis=0))[0]
        assert abs((cols.min() + cols.max()) / 2 - 120) < 8  # centred


async def test_text_overlay_stroke_backdrop_and_size() -> None:
    canvas = Image.new("RGB", (240, 120), (128, 128, 128))
    plain = pixels((await run_node("image.text_overlay", {"image": canvas, "text": "Hi"}, {"size": 40}))["image"])
    outlined = pixels((await run_node("image.text_overlay", {"image": canvas, "text": "Hi"},
                                      {"size": 40, "strokeWidth": 3, "color": "#ffff00"}))["image"])
    assert (plain.sum(-1) < 60).sum() == 0 and (outlined.sum(-1) < 60).sum() > 50
    assert ((outlined == [255, 255, 0]).all(-1)).sum() > 50
    boxed = pixels((await run_node("image.text_overlay", {"image": canvas, "text": "Hi"},
                                   {"size": 40, "background": "#0000ff"}))["image"])
    assert ((boxed == [0, 0, 255]).all(-1)).sum() > 500
    small = changed(canvas, (await run_node("image.text_overlay", {"image": canvas, "text": "Hi"},
                                            {"size": 12}))["image"])
    big = changed(canvas, Image.fromarray(plain.astype(np.uint8)))
    assert np.ptp(np.where(big.any(1))[0]) > 2 * np.ptp(np.where(small.any(1))[0])


async def test_text_overlay_wraps_long_text() -> None:
    canvas = Image.new("RGB", (120, 200), "black")
    words = "the quick brown fox jumps over the lazy dog"
    wrapped = changed(canvas, (await run_node("image.text_overlay", {"image": canvas, "text": words},
                                              {"size": 16, "position": "top-left", "margin": 8}))["image"])
    rows, cols = np.where(wrapped.any(1))[0], np.where(wrapped.any(0))[0]
    assert np.ptp(rows) > 40 and cols.min() >= 8 and cols.max() <= 112
    single = changed(canvas, (await run_node("image.text_overlay", {"image": canvas, "text": words},
                                             {"size": 16, "position": "top-left", "wrap": False}))["image"])
    assert np.ptp(np.where(single.any(1))[0]) < 20


async def test_text_watermark_sits_in_its_corner_at_its_opacity() -> None:
    canvas = Image.new("RGB", (200, 200), "black")
    out = pixels((await run_node("image.watermark", {"image": canvas, "text": "© nodeloom"},
                                 {"opacity": 0.5, "scale": 0.4}))["image"])
    hit = out.sum(-1) > 0
    rows, cols = np.where(hit.any(1))[0], np.where(hit.any(0))[0]
    assert rows.min() > 100 and cols.min() > 100 and np.ptp(cols) > 60
    assert 120 <= out.max() <= 135


async def test_image_watermark_and_tiling() -> None:
    canvas = Image.new("RGB", (200, 200), "black")
    logo = Image.new("RGB", (10, 10), (255, 0, 0))
    out = pixels((await run_node("image.watermark", {"image": canvas, "mark": logo},
                                 {"opacity": 1, "scale": 0.1, "position": "top-left", "margin": 0.05}))["image"])
    assert (out[10:30, 10:30] == [255, 0, 0]).all() and out[40:].max() == 0
    tiled = pixels((await run_node("image.watermark", {"image": canvas, "mark": logo},
                                   {"opacity": 1, "scale": 0.1, "position": "tile"}))["image"])
    quarters = [tiled[:100, :100], tiled[:100, 100:], tiled[100:, :100], tiled[100:, 100:]]
    assert all((q[..., 0] == 255).sum() > 400 for q in quarters)
    with pytest.raises(NodeError, match="give a `mark` image or a `text`"):
        await run_node("image.watermark", {"image": canvas})


async def test_border() -> None:
    src = quadrants(20)
    out = (await run_node("image.border", {"image": src}, {"width": 5, "color": "#00ff00"}))["image"]
    a = pixels(out)
    assert out.size == (30, 30) and np.array_equal(a[5:25, 5:25], pixels(src))
    ring = np.ones((30, 30), bool)
    ring[5:25, 5:25] = False
    assert (a[ring] == [0, 255, 0]).all()


async def test_rounded_corners() -> None:
    out = (await run_node("image.rounded_corners", {"image": ramp(80, 60)}, {"radius": 20}))["image"]
    alpha = pixels(out)[..., 3]
    assert out.mode == "RGBA"
    assert alpha[0, 0] == alpha[0, -1] == alpha[-1, 0] == alpha[-1, -1] == 0
    assert alpha[30, 40] == 255 and alpha[0, 40] == 255 and alpha[30, 0] == 255
    assert ((alpha > 0) & (alpha < 255)).sum() > 8  # a smooth arc, not a jagged notch
    assert abs((alpha < 128).sum() - 4 * (20**2 - np.pi * 20**2 / 4)) < 30
    circle = (await run_node("image.rounded_corners", {"image": ramp(40, 40)}, {"radius": 1000}))["image"]
    assert abs((pixels(circle)[..., 3] >= 128).sum() - np.pi * 20**2) < 30


async def test_grid_lays_images_out() -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    tiles = [Image.new("RGB", (30, 20), c) for c in colours]
    out = (await run_node("image.grid", {"images": tiles}, {"columns": 2, "gap": 10,
           "color": "#000000"}))["image"]
    a = pixels(out)
    assert out.size == (70, 50)
    assert [a[10, 15].tolist(), a[10, 55].tolist(), a[40, 15].tolist(), a[40, 55].tolist()] == [list(c) for c in colours]
    assert a[25, :].max() == 0 and a[:, 35].max() == 0
    auto = (await run_node("image.grid", {"images": tiles + tiles[:1]}))["image"]
    assert auto.size == (90, 40)  # 5 images: 3 columns, 2 rows
    mixed = (await run_node("image.grid", {"images": [Image.new("RGB", (40, 40), "red"),
                                                      Image.new("RGB", (10, 10), "blue")]}))["image"]
    assert mixed.size == (80, 40) and pixels(mixed)[20, 60].tolist() == [0, 0, 255]
    assert pixels(mixed)[2, 60].tolist() == [255, 255, 255]  # centred, background around
