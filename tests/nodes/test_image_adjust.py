"""The image adjustment pack: tone, colour and filters, measured on the pixels they produce."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter
from tests.nodes.helpers import noise, pixels, ramp, run_node


async def image_of(node_type: str, img: Image.Image, **params: object) -> Image.Image:
    return (await run_node(node_type, {"image": img}, params))["image"]


def grey(level: int, size: tuple[int, int] = (32, 32), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, (level, level, level, 255) if mode == "RGBA" else (level,) * 3)


def translucent(img: Image.Image) -> Image.Image:
    """The image with a left-to-right alpha ramp, to prove alpha survives an adjustment."""
    out = img.convert("RGBA")
    out.putalpha(Image.linear_gradient("L").rotate(90).resize(img.size))
    return out


async def test_brightness() -> None:
    src = ramp()
    assert pixels(await image_of("image.brightness", src, factor=0)).max() == 0
    assert np.array_equal(pixels(await image_of("image.brightness", src, factor=1)), pixels(src))
    brighter = pixels(await image_of("image.brightness", grey(100), factor=1.5))
    assert np.allclose(brighter, 150, atol=1)


async def test_adjustments_keep_alpha() -> None:
    src = translucent(ramp())
    for node_type, params in [("image.brightness", {"factor": 0.5}), ("image.hue", {"degrees": 90}),
                              ("image.sepia", {}), ("image.invert", {}), ("image.blur", {"radius": 2}),
                              ("image.denoise", {"strength": 5}), ("image.gamma", {"gamma": 2})]:
        out = await image_of(node_type, src, **params)
        assert out.mode == "RGBA", node_type
        assert np.array_equal(pixels(out)[..., 3], pixels(src)[..., 3]), node_type


async def test_contrast() -> None:
    src = ramp()
    flat = pixels(await image_of("image.contrast", src, factor=0))
    assert flat.std(axis=(0, 1)).max() < 1
    assert pixels(await image_of("image.contrast", src, factor=2)).std() > pixels(src).std() * 1.3


async def test_saturation() -> None:
    src = Image.new("RGB", (8, 8), (200, 40, 40))
    a = pixels(await image_of("image.saturation", src, factor=0))
    assert np.allclose(a[..., 0], a[..., 1]) and np.allclose(a[..., 1], a[..., 2])
    vivid = pixels(await image_of("image.saturation", Image.new("RGB", (8, 8), (150, 100, 100)), factor=2))
    assert vivid[0, 0, 0] - vivid[0, 0, 1] > 80


@pytest.mark.parametrize(("degrees", "channel"), [(120, 1), (-120, 2)])
async def test_hue_turns_red_into_green_or_blue(degrees: float, channel: int) -> None:
    out = pixels(await image_of("image.hue", Image.new("RGB", (8, 8), (255, 0, 0)), degrees=degrees))
    assert out[0, 0, channel] > 240 and out[0, 0].sum() - out[0, 0, channel] < 20


async def test_gamma_moves_midtones() -> None:
    assert np.allclose(pixels(await image_of("image.gamma", grey(128), gamma=2)), 255 * (128 / 255) ** 0.5, atol=1)
    assert np.allclose(pixels(await image_of("image.gamma", grey(128), gamma=0.5)), 255 * (128 / 255) ** 2, atol=1)
    ends = pixels(await image_of("image.gamma", ramp(), gamma=3))
    assert ends.min() == 0 and ends.max() == 255


async def test_grayscale() -> None:
    out = await image_of("image.grayscale", Image.new("RGB", (4, 4), (255, 0, 0)))
    assert out.mode == "L" and abs(pixels(out).mean() - 0.299 * 255) < 1.5
    with_alpha = await image_of("image.grayscale", translucent(ramp()))
    assert with_alpha.mode == "LA"


async def test_sepia() -> None:
    toned = pixels(await image_of("image.sepia", grey(128)))[0, 0]
    assert toned[0] > toned[1] > toned[2]
    assert np.array_equal(pixels(await image_of("image.sepia", ramp(), strength=0)), pixels(ramp()))


async def test_invert() -> None:
    src = ramp()
    assert np.array_equal(pixels(await image_of("image.invert", src)), 255 - pixels(src))
    mask = Image.new("L", (4, 4), 10)
    inverted = await image_of("image.invert", mask)
    assert inverted.mode == "L" and pixels(inverted).max() == 245


async def test_threshold_makes_a_binary_mask() -> None:
    src = Image.linear_gradient("L").resize((64, 64))  # black at the top, white at the bottom
    mask = (await run_node("image.threshold", {"image": src}, {"level": 192}))["mask"]
    values = pixels(mask)
    assert mask.mode == "L" and set(np.unique(values)) == {0, 255}
    assert abs((values == 255).mean() - (1 - 192 / 256)) < 0.05
    assert values[:32].max() == 0


async def test_posterize() -> None:
    out = pixels(await image_of("image.posterize", ramp(), bits=1))
    assert set(np.unique(out)) <= {0, 128}
    assert len(np.unique(pixels(await image_of("image.posterize", ramp(), bits=2)))) <= 4


async def test_autocontrast_and_equalize_stretch_a_dull_image() -> None:
    dull = Image.fromarray((100 + pixels(ramp())[..., :3] / 255 * 50).astype(np.uint8))
    stretched = pixels(await image_of("image.autocontrast", dull))
    assert stretched[..., :2].min() == 0 and stretched[..., :2].max() == 255
    equalized = pixels(await image_of("image.equalize", dull))
    assert equalized[..., 0].max() - equalized[..., 0].min() > 200
    assert equalized.std() > 3 * pixels(dull).std()


@pytest.mark.parametrize("kind", ["gaussian", "box", "median"])
async def test_blur_smooths_noise(kind: str) -> None:
    src = noise(64, 64)
    out = pixels(await image_of("image.blur", src, radius=3, kind=kind))
    assert out.std() < pixels(src).std() / 2
    assert abs(out.mean() - pixels(src).mean()) < 6


async def test_median_blur_removes_specks_and_zero_radius_is_identity() -> None:
    src = grey(128)
    for xy in [(5, 5), (20, 9), (30, 30)]:
        src.putpixel(xy, (255, 255, 255))
    assert pixels(await image_of("image.blur", src, radius=1, kind="median")).max() == 128
    assert np.array_equal(pixels(await image_of("image.blur", src, radius=0)), pixels(src))


async def test_sharpen_restores_edge_contrast() -> None:
    edge = Image.new("RGB", (64, 64), "black")
    edge.paste((255, 255, 255), (32, 0, 64, 64))
    soft = edge.filter(ImageFilter.GaussianBlur(2))
    sharp = pixels(await image_of("image.sharpen", soft, radius=2, amount=300))

    def steepness(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a[32, :, 0])).max())

    assert steepness(sharp) > 1.5 * steepness(pixels(soft))


async def test_denoise_removes_grain_but_keeps_edges() -> None:
    rng = np.random.default_rng(0)
    clean = np.zeros((64, 64, 3))
    clean[:, 32:] = 200
    noisy = Image.fromarray(np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8))
    out = pixels(await image_of("image.denoise", noisy, strength=15))
    assert np.abs(out - clean).mean() < np.abs(pixels(noisy) - clean).mean() / 2
    assert out[:, 36:].mean() - out[:, :28].mean() > 180


async def test_pixelate_makes_uniform_blocks() -> None:
    src = noise(64, 64)
    out = pixels(await image_of("image.pixelate", src, size=16))
    block = out[16:32, 32:48]
    assert (block == block[0, 0]).all()
    assert np.allclose(block[0, 0], pixels(src)[16:32, 32:48].mean(axis=(0, 1)), atol=1)


async def test_vignette_darkens_corners_only() -> None:
    out = pixels(await image_of("image.vignette", grey(255, (101, 101)), strength=0.6, radius=0.5))
    assert out[50, 50].tolist() == [255, 255, 255]
    assert 90 < out[0, 0, 0] < 120
    assert out[50, 20, 0] == 255  # inside the radius


async def test_inpaint_fills_the_masked_hole() -> None:
    original = ramp(64, 64)
    damaged = original.copy()
    damaged.paste((0, 0, 0), (24, 24, 40, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (24, 24, 40, 40))
    for method in ("telea", "navier-stokes"):
        out = await run_node("image.inpaint", {"image": damaged, "mask": mask}, {"method": method})
        hole = (slice(24, 40), slice(24, 40))
        before = np.abs(pixels(damaged)[hole] - pixels(original)[hole]).mean()
        after = np.abs(pixels(out["image"])[hole] - pixels(original)[hole]).mean()
        assert before > 80 and after < 15, method
        assert np.array_equal(pixels(out["image"])[:20], pixels(original)[:20])
