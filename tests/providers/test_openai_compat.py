from __future__ import annotations

import pytest

from nodeloom.providers import (
    OpenAICompatProvider,
    ProviderError,
    ProviderUnavailable,
    RetryPolicy,
    Route,
    Router,
    fetch_media,
    user_message,
)

from .standins._server import PNG, Scripted
from .standins.openai import OpenAIStandIn, rate_limited


def make_openai(standin: OpenAIStandIn, http, **options) -> OpenAICompatProvider:
    return OpenAICompatProvider(api_key=standin.key, http=http, base_url=standin.base_url + "/v1", **options)


async def test_chat_completion_returns_the_text(openai_standin, http):
    provider = make_openai(openai_standin, http)

    result = await provider.run(
        "gpt-4.1-mini",
        {
            "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a red fox"}],
            "max_tokens": 50,
        },
    )

    assert result.text == "echo: a red fox"
    assert result.request_id and result.request_id.startswith("chatcmpl-")
    [seen] = openai_standin.requests
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"]["model"] == "gpt-4.1-mini" and seen["body"]["max_tokens"] == 50


async def test_vision_messages_carry_images_as_data_uris(openai_standin, http):
    provider = make_openai(openai_standin, http)

    result = await provider.run(
        "gpt-4.1-mini", {"messages": [user_message("caption this", images=[(PNG, "image/png")])]}
    )

    assert result.text == "echo: caption this [1 image(s)]"
    content = openai_standin.requests[0]["body"]["messages"][0]["content"]
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")


async def test_image_generation_decodes_b64_json_and_keeps_urls(openai_standin, http):
    provider = make_openai(openai_standin, http)

    inline = await provider.run("gpt-image-1", {"prompt": "a red fox", "size": "1024x1024"})
    assert [(m.data, m.content_type) for m in inline.media] == [(PNG, "image/png")]

    linked = await provider.run("dall-e-3", {"prompt": "a red fox", "n": 2})
    assert len(linked.media) == 2 and all(m.same_host and m.data is None for m in linked.media)
    assert await fetch_media(http, linked.media[0]) == PNG


async def test_errors_carry_the_servers_message(openai_standin, http):
    provider = OpenAICompatProvider(api_key="sk-wrong", http=http, base_url=openai_standin.base_url + "/v1")

    with pytest.raises(ProviderError) as caught:
        await provider.run("gpt-4.1-mini", {"messages": [user_message("hi")]})

    assert str(caught.value) == "openai: Incorrect API key provided. (HTTP 401)"
    assert not caught.value.retryable


async def test_ollama_style_string_errors_are_read_too(openai_standin, http):
    openai_standin.behaviour.errors = [
        Scripted(404, {"error": 'model "llama9" not found, try pulling it first'})
    ]
    provider = make_openai(openai_standin, http)

    with pytest.raises(ProviderError, match='model "llama9" not found'):
        await provider.run("llama9", {"messages": [user_message("hi")]})


async def test_a_429_waits_for_retry_after_then_succeeds(openai_standin, http, fake_time):
    openai_standin.behaviour.errors = [rate_limited(12)]
    router = Router(retry=RetryPolicy(max_attempts=2), clock=fake_time.clock, sleep=fake_time.sleep)

    result = await router.run(
        [Route(make_openai(openai_standin, http), "gpt-4.1-mini", {"messages": [user_message("hi")]})]
    )

    assert result.text == "echo: hi" and fake_time.sleeps == [12.0]


async def test_a_slow_server_times_out(openai_standin, http):
    openai_standin.behaviour.delay = 0.5
    provider = make_openai(openai_standin, http, request_timeout=0.05)

    with pytest.raises(ProviderError) as caught:
        await provider.run("gpt-4.1-mini", {"messages": [user_message("hi")]})

    assert caught.value.retryable and "no answer from 127.0.0.1" in caught.value.message


async def test_a_key_is_needed_for_openai_but_not_for_a_local_server(openai_standin, http):
    hosted = OpenAICompatProvider(api_key=None, http=http)
    assert "OPENAI_API_KEY" in (hosted.unavailable_reason or "")
    with pytest.raises(ProviderUnavailable):
        await hosted.run("gpt-4.1-mini", {"messages": [user_message("hi")]})

    local = OpenAICompatProvider(
        api_key=None, http=http, base_url="http://127.0.0.1:11434/v1", require_key=False
    )
    assert local.unavailable_reason is None
