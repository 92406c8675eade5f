"""Whole workflows over hosted models: the issue's prompt → expand → Flux → upscale → output chain,
and the other vendors (Gemini images, vision captions, background removal, edits with references)."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image
from tests.hosted.helpers import with_packs
from tests.support.server import IN_CI, publish, run_to_end

from nodeloom.nodes.models_vision import realesrgan_unavailable
from nodeloom.providers.models import PROMPT_EXPAND_SYSTEM


def _png(size: tuple[int, int], color: tuple[int, ...] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def chain(upscaler: str) -> dict:
    return {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "a fox"}},
        {"id": "expand", "type": "llm.prompt_expand", "inputs": {"prompt": {"from": "prompt", "output": "text"}}},
        {"id": "flux", "type": "generate.flux_2_pro", "inputs": {"prompt": {"from": "expand", "output": "text"}},
         "params": {"aspectRatio": "1:1", "seed": 3}},
        {"id": "up", "type": upscaler, "inputs": {"image": {"from": "flux", "output": "image"}},
         "params": {"scale": 2}},
        {"id": "out", "type": "output.image", "inputs": {"image": {"from": "up", "output": "image"}},
         "params": {"name": "image"}},
    ]}


def run_chain(hosted_server, fal_standin, openai_standin, upscaler: str) -> dict:
    picture = _png((24, 16))
    fal_standin.behaviour.output = lambda base, job: {
        "images": [{"url": _data_uri(picture), "content_type": "image/png", "width": 24, "height": 16}],
        "seed": 3}
    server = hosted_server(node_packs=with_packs("nodeloom.nodes.models"))
    _account, key = server.account(credits=100)
    with server.client(key) as c:
        done = run_to_end(c, publish(c, chain(upscaler)), {"prompt": "a fox on a roof"})
        assert done["status"] == "COMPLETED", done
        image = done["outputs"]["image"]
        assert (image["width"], image["height"]) == (48, 32)
        stored = Image.open(io.BytesIO(c.get(image["url"]).content))
        assert stored.size == (48, 32)
    [chat] = openai_standin.requests
    assert chat["path"] == "/v1/chat/completions"
    assert chat["body"]["messages"] == [{"role": "system", "content": PROMPT_EXPAND_SYSTEM},
                                        {"role": "user", "content": "a fox on a roof"}]
    [job] = fal_standin.submissions
    assert job.arguments["prompt"] == "echo: a fox on a roof"  # the expanded prompt fed the image model
    assert done["nodes"]["expand"]["outputs"]["text"] == "echo: a fox on a roof"
    return done


def test_prompt_expand_flux_and_realesrgan_end_to_end(hosted_server, fal_standin, openai_standin):
    reason = realesrgan_unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"upscale.realesrgan must be available in CI: {reason}")
        pytest.skip(f"upscale.realesrgan is unavailable here: {reason}")
    run_chain(hosted_server, fal_standin, openai_standin, "upscale.realesrgan")


def test_prompt_expand_flux_and_lanczos_end_to_end(hosted_server, fal_standin, openai_standin):
    run_chain(hosted_server, fal_standin, openai_standin, "upscale.lanczos")


def test_gemini_images_vision_captions_background_removal_and_edits(hosted_server, fal_standin, replicate_standin,
                                                                      openai_standin, gemini_standin):
    photo = _data_uri(_png((8, 8)))
    cutout = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    cutout.paste((10, 200, 10, 255), (2, 2, 6, 6))
    buffer = io.BytesIO()
    cutout.save(buffer, format="PNG")
    replicate_standin.behaviour.output = lambda base, pid: _data_uri(buffer.getvalue())
    server = hosted_server({"NODELOOM_PROVIDER_ORDER": "gemini,replicate,fal"})
    _account, key = server.account(credits=1000)
    graph = {"nodes": [
        {"id": "photo", "type": "input.image", "params": {"name": "photo"}},
        {"id": "banana", "type": "generate.nano_banana_2", "inputs": {"prompt": "a banana"},
         "params": {"aspectRatio": "4:3", "resolution": "2K"}},
        {"id": "caption", "type": "llm.caption_image", "inputs": {"image": {"from": "photo", "output": "image"}}},
        {"id": "cut", "type": "background.birefnet", "inputs": {"image": {"from": "photo", "output": "image"}}},
        {"id": "edit", "type": "generate.flux_2_pro_edit",
         "inputs": {"prompt": "make it blue", "image": {"from": "photo", "output": "image"},
                    "image2": {"from": "banana", "output": "image"}}},
        {"id": "o1", "type": "output.image", "inputs": {"image": {"from": "banana", "output": "image"}},
         "params": {"name": "banana"}},
        {"id": "o2", "type": "output.text", "inputs": {"text": {"from": "caption", "output": "text"}},
         "params": {"name": "caption"}},
        {"id": "o3", "type": "output.image", "inputs": {"image": {"from": "cut", "output": "mask"}},
         "params": {"name": "mask"}},
        {"id": "o4", "type": "output.image", "inputs": {"image": {"from": "edit", "output": "image"}},
         "params": {"name": "edited"}},
    ]}
    with server.client(key) as c:
        done = run_to_end(c, publish(c, graph), {"photo": photo})
        assert done["status"] == "COMPLETED", done
        mask = Image.open(io.BytesIO(c.get(done["outputs"]["mask"]["url"]).content))

    [banana] = [r for r in gemini_standin.requests if r["model"] == "gemini-3.1-flash-image-preview"]
    assert banana["body"]["generationConfig"]["imageConfig"] == {"aspectRatio": "4:3", "imageSize": "2K"}
    assert done["nodes"]["banana"]["outputs"]["vendor"]["provider"] == "gemini"

    assert done["outputs"]["caption"] == "echo: Describe this image in one or two precise sentences. [1 image(s)]"
    assert done["nodes"]["caption"]["outputs"]["vendor"]["provider"] == "gemini"
    [captioned] = [r for r in gemini_standin.requests if r["model"] == "gemini-2.5-flash"]
    assert captioned["body"]["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/png"

    assert mask.getpixel((0, 0)) == 0 and mask.getpixel((3, 3)) == 255
    by_model = {p["model"]: p for p in replicate_standin.submissions}
    assert by_model["men1scus/birefnet"]["input"]["image"].startswith("data:image/png;base64,")
    edit_input = by_model["black-forest-labs/flux-2-pro"]["input"]
    assert edit_input["prompt"] == "make it blue" and len(edit_input["input_images"]) == 2
    assert fal_standin.submissions == []


def test_a_local_openai_compatible_server_needs_no_key_and_names_its_own_model(hosted_server, openai_standin):
    keyless = hosted_server({"OPENAI_API_KEY": None, "GEMINI_API_KEY": None})
    _account, key = keyless.account()
    with keyless.client(key) as c:  # a base URL that is not OpenAI's own (Ollama, vLLM…) takes no key
        assert c.get("/api/v1/nodes/llm.chat").json()["available"] is True

    server = hosted_server({"NODELOOM_OPENAI_CHAT_MODEL": "qwen2.5:0.5b-instruct"})
    _account, key = server.account()
    graph = {"nodes": [
        {"id": "chat", "type": "llm.chat", "inputs": {"prompt": "hello"},
         "params": {"system": "be brief", "temperature": 0.2}},
        {"id": "out", "type": "output.text", "inputs": {"text": {"from": "chat", "output": "text"}},
         "params": {"name": "answer"}},
    ]}
    with server.client(key) as c:
        done = run_to_end(c, publish(c, graph))
    assert done["status"] == "COMPLETED", done
    assert done["outputs"]["answer"] == "echo: hello"
    [request] = openai_standin.requests
    assert request["body"] == {"model": "qwen2.5:0.5b-instruct", "temperature": 0.2, "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]}
