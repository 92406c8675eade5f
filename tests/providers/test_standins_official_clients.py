"""The stand-ins are only worth testing against if the vendors' own clients accept them.

Each test drives a stand-in with the vendor's official Python client, configured the documented
way (fal: FAL_QUEUE_RUN_HOST + FAL_KEY; Replicate: `Client(base_url=...)`; OpenAI:
`OpenAI(base_url=...)`; Google: `genai.Client(http_options=HttpOptions(base_url=...))`).
The official clients are synchronous here; the stand-ins run on their own threads.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import replicate
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from .conftest import TlsFiles
from .standins._server import PNG
from .standins.fal import FalStandIn
from .standins.gemini import GeminiStandIn
from .standins.openai import OpenAIStandIn, rate_limited
from .standins.replicate import ReplicateStandIn

DRIVER = Path(__file__).parent / "standins" / "fal_client_driver.py"


# --- fal ----------------------------------------------------------------------------------------


def drive_fal(standin: FalStandIn, tls: TlsFiles, mode: str, endpoint: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "FAL_QUEUE_RUN_HOST": httpx.URL(standin.base_url).netloc.decode(),
        "FAL_KEY": standin.key,
        "SSL_CERT_FILE": str(tls.certfile),
    }
    done = subprocess.run(
        [sys.executable, str(DRIVER), mode, endpoint],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fal_client_subscribes_through_queue_progress_and_result(
    fal_tls_standin: FalStandIn, tls_files: TlsFiles
):
    fal_tls_standin.behaviour.queue_positions = (2, 1)
    fal_tls_standin.behaviour.progress_logs = ("loading model", " 50%|█████     | 1/2")

    answer = drive_fal(fal_tls_standin, tls_files, "subscribe", "fal-ai/flux-2-pro/edit")

    [job] = fal_tls_standin.submissions
    assert job.endpoint == "fal-ai/flux-2-pro/edit" and job.app == "fal-ai/flux-2-pro"
    assert job.arguments == {"prompt": "a red fox"}
    assert answer["events"] == [
        ["enqueued", job.request_id],
        ["queued", 2],
        ["queued", 1],
        ["in_progress", ["loading model"]],
        ["in_progress", ["loading model", " 50%|█████     | 1/2"]],
        ["completed", ["loading model", " 50%|█████     | 1/2"], None],
    ]
    image = answer["result"]["images"][0]
    assert image["url"].startswith(fal_tls_standin.base_url + "/files/")
    assert set(fal_tls_standin.auth_seen) == {f"Key {fal_tls_standin.key}"}


def test_fal_client_cancels_a_queued_request(fal_tls_standin: FalStandIn, tls_files: TlsFiles):
    fal_tls_standin.behaviour.queue_positions = (3, 2, 1)

    answer = drive_fal(fal_tls_standin, tls_files, "cancel", "fal-ai/veo3")

    assert fal_tls_standin.cancels == [answer["request_id"]]
    assert answer["before"] == ["queued", 3]
    assert answer["after"] == ["completed", [], "Request was cancelled"]


def test_fal_client_reports_a_failed_request(fal_tls_standin: FalStandIn, tls_files: TlsFiles):
    fal_tls_standin.behaviour.failure = (500, "CUDA out of memory")

    answer = drive_fal(fal_tls_standin, tls_files, "fail", "fal-ai/flux/dev")

    assert answer == {"status": 500, "message": "CUDA out of memory"}


# --- Replicate ----------------------------------------------------------------------------------


def test_replicate_client_runs_a_model_and_reads_its_output(replicate_standin: ReplicateStandIn):
    client = replicate.Client(api_token=replicate_standin.token, base_url=replicate_standin.base_url)

    output = client.run("black-forest-labs/flux-2-pro", input={"prompt": "a red fox"}, use_file_output=False)

    [prediction] = replicate_standin.submissions
    assert prediction["input"] == {"prompt": "a red fox"}
    assert prediction["model"] == "black-forest-labs/flux-2-pro"
    assert output == [f"{replicate_standin.base_url}/files/{prediction['id']}-0.png"]
    assert httpx.get(output[0]).content == PNG


def test_replicate_client_polls_creates_and_cancels_predictions(replicate_standin: ReplicateStandIn):
    replicate_standin.behaviour.queue_polls = 1
    replicate_standin.behaviour.progress_logs = ("  0%|          | 0/4", " 50%|█████     | 2/4")
    client = replicate.Client(api_token=replicate_standin.token, base_url=replicate_standin.base_url)

    prediction = client.models.predictions.create(model="kwaivgi/kling-v2.5-turbo-pro", input={"prompt": "x"})
    assert prediction.status == "starting"
    prediction.reload()
    assert prediction.status == "starting"
    prediction.reload()
    prediction.reload()
    assert prediction.status == "processing"
    assert prediction.progress is not None and prediction.progress.percentage == 0.5
    prediction.cancel()
    assert prediction.status == "canceled"
    assert replicate_standin.cancels == [prediction.id]

    versioned = client.predictions.create(
        version="5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa", input={"prompt": "y"}
    )
    assert versioned.version.startswith("5c7d5dc6")


def test_replicate_client_sees_failures_and_auth_errors(replicate_standin: ReplicateStandIn):
    replicate_standin.behaviour.failure = "NSFW content detected"
    client = replicate.Client(api_token=replicate_standin.token, base_url=replicate_standin.base_url)
    with pytest.raises(replicate.exceptions.ModelError, match="NSFW content detected"):
        client.run("google/veo-3", input={"prompt": "x"})

    stranger = replicate.Client(api_token="r8_wrong", base_url=replicate_standin.base_url)
    with pytest.raises(replicate.exceptions.ReplicateError) as caught:
        stranger.run("google/veo-3", input={"prompt": "x"})
    assert caught.value.status == 401 and caught.value.title == "Unauthenticated"


# --- OpenAI-compatible --------------------------------------------------------------------------


def test_openai_client_chats_with_vision_and_generates_images(openai_standin: OpenAIStandIn):
    client = openai.OpenAI(
        api_key=openai_standin.key, base_url=openai_standin.base_url + "/v1", max_retries=0
    )
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()

    completion = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": data_url}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "echo: describe [1 image(s)]"

    inline = client.images.generate(model="gpt-image-1", prompt="a red fox")
    assert base64.b64decode(inline.data[0].b64_json) == PNG
    linked = client.images.generate(model="dall-e-3", prompt="a red fox", n=2)
    assert [httpx.get(item.url).content for item in linked.data] == [PNG, PNG]


def test_openai_client_sees_errors_and_honours_retry_after(openai_standin: OpenAIStandIn):
    stranger = openai.OpenAI(api_key="sk-wrong", base_url=openai_standin.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        stranger.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "invalid_api_key"

    openai_standin.behaviour.errors = [rate_limited(0)]
    patient = openai.OpenAI(
        api_key=openai_standin.key, base_url=openai_standin.base_url + "/v1", max_retries=1
    )
    answer = patient.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "echo: hi"
    assert openai_standin.behaviour.errors == []


# --- Gemini -------------------------------------------------------------------------------------


def test_google_genai_client_generates_an_image(gemini_standin: GeminiStandIn):
    client = genai.Client(
        api_key=gemini_standin.key, http_options=genai_types.HttpOptions(base_url=gemini_standin.base_url)
    )

    response = client.models.generate_content(
        model="gemini-3.1-flash-image-preview",
        contents=["a red fox", genai_types.Part.from_bytes(data=PNG, mime_type="image/png")],
        config=genai_types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            image_config=genai_types.ImageConfig(aspect_ratio="16:9"),
        ),
    )

    parts = response.candidates[0].content.parts
    assert parts[0].text == "echo: a red fox [1 image(s)]"
    assert parts[1].inline_data.mime_type == "image/png" and parts[1].inline_data.data == PNG
    [seen] = gemini_standin.requests
    assert seen["model"] == "gemini-3.1-flash-image-preview"
    assert seen["body"]["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}


def test_google_genai_client_sees_api_errors(gemini_standin: GeminiStandIn):
    stranger = genai.Client(
        api_key="AIza-wrong", http_options=genai_types.HttpOptions(base_url=gemini_standin.base_url)
    )
    with pytest.raises(genai_errors.ClientError) as caught:
        stranger.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
