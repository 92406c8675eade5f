"""The image adjustment pack: tone and colour (brightness … equalize) and filters (blur, sharpen, denoise,
pixelate, vignette, inpaint). Alpha is carried through untouched unless a node says otherwise."""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np
from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps

from nodeloom.engine.node import Context, Node
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes.image import IMAGE_IN, IMAGE_OUT, as_mask, normalized, split_alpha, with_alpha

# --- pure functions (run in the process pool) ---------------------------------------------------------


def enhance_image(image: Image.Image, kind: str, factor: float) -> Image.Image:
    enhancers = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast,
                 "saturation": ImageEnhance.Color, "sharpness": ImageEnhance.Sharpness}
    rgb, alpha = split_alpha(image)
    return with_alpha(enhancers[kind](rgb).enhance(factor), alpha)


def shift_hue(image: Image.Image, degrees: float) -> Image.Image:
    rgb, alpha = split_alpha(image)
    hsv = np.array(rgb.convert("HSV"))
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + round(degrees / 360 * 256)) % 256).astype(np.uint8)
    return with_alpha(Image.fromarray(hsv, "HSV").convert("RGB"), alpha)


def apply_gamma(image: Image.Image, gamma: float) -> Image.Image:
    table = [round(255 * (i / 255) ** (1 / gamma)) for i in range(256)]
    rgb, alpha = split_alpha(image)
    return with_alpha(rgb.point(table * 3), alpha)


def to_grayscale(image: Image.Image) -> Image.Image:
    rgb, alpha = split_alpha(image)
    gray = rgb.convert("L")
    if alpha is None:
        return gray
    return Image.merge("LA", (gray, alpha))


SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float32)


def apply_sepia(image: Image.Image, strength: float) -> Image.Image:
    rgb, alpha = split_alpha(image)
    pixels = np.asarray(rgb, dtype=np.float32)
    toned = np.clip(pixels @ SEPIA.T, 0, 255)
    mixed = pixels * (1 - strength) + toned * strength
    return with_alpha(Image.fromarray(np.round(mixed).astype(np.uint8)), alpha)


def invert_image(image: Image.Image) -> Image.Image:
    # ImageChops.invert is one C loop; ImageOps.invert builds a lookup table in Python on every call (20× slower)
    if image.mode == "L":
        return ImageChops.invert(image)
    rgb, alpha = split_alpha(image)
    return with_alpha(ImageChops.invert(rgb), alpha)


def threshold_image(image: Image.Image, level: int) -> Image.Image:
    return image.convert("L").point(lambda v: 255 if v >= level else 0)


def posterize_image(image: Image.Image, bits: int) -> Image.Image:
    rgb, alpha = split_alpha(image)
    return with_alpha(ImageOps.posterize(rgb, bits), alpha)


def autocontrast_image(image: Image.Image, cutoff: float) -> Image.Image:
    rgb, alpha = split_alpha(image)
    return with_alpha(ImageOps.autocontrast(rgb, cutoff=cutoff), alpha)


def equalize_image(image: Image.Image) -> Image.Image:
    rgb, alpha = split_alpha(image)
    return with_alpha(ImageOps.equalize(rgb), alpha)


def blur_image(image: Image.Image, radius: float, kind: str) -> Image.Image:
    if radius <= 0:
        return image.copy()
    rgb, alpha = split_alpha(image)
    if kind == "median":
        size = 2 * round(radius) + 1
        blurred = Image.fromarray(cv2.medianBlur(np.asarray(rgb), size))
    elif kind == "box":
        blurred = rgb.filter(ImageFilter.BoxBlur(radius))
    else:
        blurred = rgb.filter(ImageFilter.GaussianBlur(radius))
    return with_alpha(blurred, alpha)


def sharpen_image(image: Image.Image, radius: float, amount: int, threshold: int) -> Image.Image:
    rgb, alpha = split_alpha(image)
    unsharp = ImageFilter.UnsharpMask(radius=radius, percent=amount, threshold=threshold)
    return with_alpha(rgb.filter(unsharp), alpha)


def denoise_image(image: Image.Image, strength: float) -> Image.Image:
    if image.mode == "L":
        return Image.fromarray(cv2.fastNlMeansDenoising(np.asarray(image), None, strength, 7, 21))
    rgb, alpha = split_alpha(image)
    cleaned = cv2.fastNlMeansDenoisingColored(np.asarray(rgb), None, strength, strength, 7, 21)
    return with_alpha(Image.fromarray(cleaned), alpha)


def pixelate_image(image: Image.Image, block: int) -> Image.Image:
    image = normalized(image)
    small = image.resize((max(1, round(image.width / block)), max(1, round(image.height / block))),
                         Image.Resampling.BOX)
    return small.resize(image.size, Image.Resampling.NEAREST)


def vignette_image(image: Image.Image, strength: float, radius: float) -> Image.Image:
    rgb, alpha = split_alpha(image)
    w, h = rgb.size
    ys, xs = np.ogrid[:h, :w]
    # distance from the centre, 1 at the corners
    distance = np.sqrt(((xs + 0.5) / w - 0.5) ** 2 + ((ys + 0.5) / h - 0.5) ** 2) / np.sqrt(0.5)
    t = np.clip((distance - radius) / max(1e-6, 1 - radius), 0, 1)
    factor = 1 - strength * (t * t * (3 - 2 * t))
    pixels = np.asarray(rgb, dtype=np.float32) * factor[..., None].astype(np.float32)
    return with_alpha(Image.fromarray(np.round(pixels).astype(np.uint8)), alpha)


def inpaint_image(image: Image.Image, mask: Image.Image, radius: int, method: str) -> Image.Image:
    rgb, alpha = split_alpha(image)
    holes = np.asarray(as_mask(mask, rgb.size).point(lambda v: 255 if v >= 128 else 0))
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    filled = cv2.inpaint(np.asarray(rgb), holes, radius, flag)
    return with_alpha(Image.fromarray(filled), alpha)


# --- nodes ------------------------------------------------------------------------------------------


class _Enhance(Node):
    """Brightness, contrast, saturation: one factor where 1 leaves the image unchanged."""

    kind: ClassVar[str] = ""
    inputs = (IMAGE_IN,)
    params = (Param("factor", "number", default=1.0, min=0, max=10,
                    description="1 keeps the image as it is"),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, factor: float) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(enhance_image, image, self.kind, factor)}


class ImageBrightness(_Enhance):
    type = "image.brightness"
    display_name = "Brightness"
    description = "Scales brightness by `factor`: 0 is black, 1 unchanged, 2 twice as bright."
    kind = "brightness"


class ImageContrast(_Enhance):
    type = "image.contrast"
    display_name = "Contrast"
    description = "Scales contrast by `factor`: 0 is flat grey, 1 unchanged, above 1 more contrast."
    kind = "contrast"


class ImageSaturation(_Enhance):
    type = "image.saturation"
    display_name = "Saturation"
    description = "Scales colour saturation by `factor`: 0 is greyscale, 1 unchanged, above 1 more vivid."
    kind = "saturation"


class ImageHue(Node):
    type = "image.hue"
    display_name = "Hue shift"
    description = "Rotates every colour's hue by `degrees` around the colour wheel."
    inputs = (IMAGE_IN,)
    params = (Param("degrees", "number", default=0, min=-180, max=180),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, degrees: float) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(shift_hue, image, degrees)}


class ImageGamma(Node):
    type = "image.gamma"
    display_name = "Gamma"
    description = "Applies gamma correction: above 1 brightens the mid-tones, below 1 darkens them."
    inputs = (IMAGE_IN,)
    params = (Param("gamma", "number", default=1.0, min=0.05, max=10),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, gamma: float) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(apply_gamma, image, gamma)}


class ImageGrayscale(Node):
    type = "image.grayscale"
    display_name = "Grayscale"
    description = "Converts the image to a single luminance channel (mode L, or LA when it has transparency)."
    inputs = (IMAGE_IN,)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(to_grayscale, image)}


class ImageSepia(Node):
    type = "image.sepia"
    display_name = "Sepia"
    description = "Gives the image a warm brown, old-photograph tone, mixed in by `strength`."
    inputs = (IMAGE_IN,)
    params = (Param("strength", "number", default=1.0, min=0, max=1),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, strength: float) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(apply_sepia, image, strength)}


class ImageInvert(Node):
    type = "image.invert"
    display_name = "Invert colours"
    description = "Replaces every colour by its negative, keeping transparency."
    inputs = (IMAGE_IN,)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(invert_image, image)}


class ImageThreshold(Node):
    type = "image.threshold"
    display_name = "Threshold"
    description = "Turns the image into a black-and-white mask: white where luminance is at least `level`."
    inputs = (IMAGE_IN,)
    params = (Param("level", "integer", default=128, min=0, max=255),)
    outputs = (Port("mask", "mask"),)

    async def run(self, ctx: Context, *, image: Image.Image, level: int) -> dict[str, Any]:
        return {"mask": await ctx.run_cpu(threshold_image, image, level)}


class ImagePosterize(Node):
    type = "image.posterize"
    display_name = "Posterize"
    description = "Reduces each colour channel to `bits` bits, giving flat bands of colour."
    inputs = (IMAGE_IN,)
    params = (Param("bits", "integer", default=3, min=1, max=8),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, bits: int) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(posterize_image, image, bits)}


class ImageAutocontrast(Node):
    type = "image.autocontrast"
    display_name = "Auto contrast"
    description = ("Stretches each channel so its darkest value becomes 0 and its brightest 255, ignoring "
                   "`cutoff` percent.")
    inputs = (IMAGE_IN,)
    params = (Param("cutoff", "number", default=0, min=0, max=49,
                    description="Percent of darkest and lightest pixels to ignore"),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, cutoff: float) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(autocontrast_image, image, cutoff)}


class ImageEqualize(Node):
    type = "image.equalize"
    display_name = "Equalize histogram"
    description = ("Spreads each channel's histogram evenly over the full range, revealing detail in flat "
                   "images.")
    inputs = (IMAGE_IN,)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(equalize_image, image)}


class ImageBlur(Node):
    type = "image.blur"
    display_name = "Blur"
    description = "Blurs the image with a gaussian, box or median filter of `radius` pixels."
    inputs = (IMAGE_IN,)
    params = (
        Param("radius", "number", default=4, min=0, max=250),
        Param("kind", "text", default="gaussian", enum=("gaussian", "box", "median")),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, radius: float, kind: str) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(blur_image, image, radius, kind)}


class ImageSharpen(Node):
    type = "image.sharpen"
    display_name = "Sharpen"
    description = "Sharpens edges with an unsharp mask of `radius` pixels and `amount` percent."
    inputs = (IMAGE_IN,)
    params = (
        Param("radius", "number", default=2, min=0.1, max=50),
        Param("amount", "integer", default=150, min=0, max=1000, description="Strength in percent"),
        Param("threshold", "integer", default=3, min=0, max=255,
              description="Leave differences below this alone"),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, radius: float, amount: int,
                  threshold: int) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(sharpen_image, image, radius, amount, threshold)}


class ImageDenoise(Node):
    type = "image.denoise"
    display_name = "Denoise"
    description = ("Removes sensor and compression noise with OpenCV's non-local means; higher `strength` "
                   "smooths more.")
    inputs = (IMAGE_IN,)
    params = (Param("strength", "number", default=10, min=1, max=50),)
    outputs = (IMAGE_OUT,)
    credits = 0.1

    async def run(self, ctx: Context, *, image: Image.Image, strength: float) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(denoise_image, image, strength)}


class ImagePixelate(Node):
    type = "image.pixelate"
    display_name = "Pixelate"
    description = "Replaces the image by blocks of `size` pixels, each the average colour beneath it."
    inputs = (IMAGE_IN,)
    params = (Param("size", "integer", default=16, min=2, max=1024),)
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, size: int) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(pixelate_image, image, size)}


class ImageVignette(Node):
    type = "image.vignette"
    display_name = "Vignette"
    description = ("Darkens the edges: from `radius` (0 centre, 1 corners) the image fades smoothly by up to "
                   "`strength`.")
    inputs = (IMAGE_IN,)
    params = (
        Param("strength", "number", default=0.6, min=0, max=1),
        Param("radius", "number", default=0.5, min=0, max=0.99),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, strength: float,
                  radius: float) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(vignette_image, image, strength, radius)}


class ImageInpaint(Node):
    type = "image.inpaint"
    display_name = "Inpaint (classic)"
    description = ("Fills the white areas of `mask` from their surroundings with OpenCV inpainting (Telea or "
                   "Navier-Stokes).")
    inputs = (IMAGE_IN, Port("mask", "mask", description="White where the image should be filled in"))
    params = (
        Param("radius", "integer", default=5, min=1, max=64,
              description="Neighbourhood each filled pixel looks at"),
        Param("method", "text", default="telea", enum=("telea", "navier-stokes")),
    )
    outputs = (IMAGE_OUT,)

    async def run(self, ctx: Context, *, image: Image.Image, mask: Image.Image, radius: int,
                  method: str) -> dict[str, Any]:
        return {"image": await ctx.run_cpu(inpaint_image, image, mask, radius, method)}


def nodes() -> list[type[Node]]:
    return [ImageBrightness, ImageContrast, ImageSaturation, ImageHue, ImageGamma, ImageGrayscale, ImageSepia,
            ImageInvert, ImageThreshold, ImagePosterize, ImageAutocontrast, ImageEqualize, ImageBlur,
            ImageSharpen, ImageDenoise, ImagePixelate, ImageVignette, ImageInpaint]
