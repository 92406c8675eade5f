from __future__ import annotations

import base64

import pytest

from nodeloom.providers import (
    GeminiProvider,
    ProviderError,
    ProviderUnavailable,
    RetryPolicy,
    Route,
    Router,
    data_uri,
)

from .standins._server import PNG, Scripted
from .standins.gemini import GeminiStandIn, exhausted


def make_gemini(standin: GeminiStandIn, http, **options) -> GeminiProvider:
    return GeminiProvider(api_key=standin.key, http=http, base_url=standin.base_url, **options)


async def test_generates_an_image_with_aspect_ratio_and_size(gemini_standin, http):
    provider = make_gemini(gemini_standin, http)

    result = await provider.run(
        "gemini-3-pro-image-preview", {"prompt": "a red fox", "aspect_ratio": "16:9", "image_size": "2K"}
    )

    [image] = result.media
    assert (image.data, image.content_type) == (PNG, "image/png")
    assert result.text == "echo: a red fox"
    [seen] = gemini_standin.requests
    assert (seen["version"], seen["model"]) == ("v1beta", "gemini-3-pro-image-preview")
    assert seen["body"]["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
    }


async def test_edits_send_images_inline(gemini_standin, http):
    provider = make_gemini(gemini_standin, http)

    result = await provider.run(
        "gemini-3.1-flash-image-preview",
        {"prompt": "make it night", "images": [data_uri(PNG, "image/png"), (PNG, "image/png")]},
    )

    assert result.text == "echo: make it night [2 image(s)]"
    parts = gemini_standin.requests[0]["body"]["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}


async def test_a_link_instead_of_bytes_is_refused_before_calling(gemini_standin, http):
    provider = make_gemini(gemini_standin, http)

    with pytest.raises(ProviderError, match="inline"):
        await provider.run("gemini-2.5-flash-image", {"prompt": "x", "images": ["https://example.com/a.png"]})
    assert gemini_standin.requests == []


async def test_text_only_answers(gemini_standin, http):
    provider = make_gemini(gemini_standin, http)

    result = await provider.run(
        "gemini-2.5-flash", {"prompt": "expand: fox", "response_modalities": ["TEXT"]}
    )

    assert result.text == "echo: expand: fox" and result.media == ()


async def test_a_blocked_prompt_says_why(gemini_standin, http):
    gemini_standin.behaviour.block_reason = "SAFETY"

    with pytest.raises(ProviderError) as caught:
        await make_gemini(gemini_standin, http).run("gemini-2.5-flash-image", {"prompt": "x"})

    assert caught.value.message == "the prompt was blocked (SAFETY)" and not caught.value.retryable


async def test_resource_exhausted_waits_for_the_retry_info_delay(gemini_standin, http, fake_time):
    gemini_standin.behaviour.errors = [exhausted(21)]
    router = Router(retry=RetryPolicy(max_attempts=2), clock=fake_time.clock, sleep=fake_time.sleep)

    result = await router.run(
        [Route(make_gemini(gemini_standin, http), "gemini-2.5-flash-image", {"prompt": "x"})]
    )

    assert fake_time.sleeps == [21.0] and result.media


async def test_errors_use_googles_status_and_message(gemini_standin, http):
    gemini_standin.behaviour.errors = [
        Scripted(
            503,
            {
                "error": {
                    "code": 503,
                    "message": "The model is overloaded. Please try again later.",
                    "status": "UNAVAILABLE",
                }
            },
        )
    ]

    with pytest.raises(ProviderError) as caught:
        await make_gemini(gemini_standin, http).run("gemini-2.5-flash-image", {"prompt": "x"})

    assert caught.value.message == "UNAVAILABLE: The model is overloaded. Please try again later."
    assert caught.value.retryable and caught.value.status == 503

    stranger = GeminiProvider(api_key="AIza-wrong", http=http, base_url=gemini_standin.base_url)
    with pytest.raises(ProviderError, match="API key not valid") as caught:
        await stranger.run("gemini-2.5-flash-image", {"prompt": "x"})
    assert not caught.value.retryable


async def test_without_a_key_it_says_what_to_set(http):
    provider = GeminiProvider(api_key=None, http=http)

    assert "GEMINI_API_KEY" in (provider.unavailable_reason or "")
    with pytest.raises(ProviderUnavailable, match="GEMINI_API_KEY"):
        await provider.run("gemini-2.5-flash-image", {"prompt": "x"})
