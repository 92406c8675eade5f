from __future__ import annotations

import asyncio

import httpx
import pytest

from nodeloom.providers import (
    JobState,
    JobStatus,
    ProviderCancelled,
    ProviderError,
    ProviderUnavailable,
    ReplicateProvider,
    RetryPolicy,
    Route,
    Router,
    Submission,
    fetch_media,
)

from .conftest import FakeTime
from .standins._server import PNG, Scripted
from .standins.replicate import ReplicateStandIn


def make_replicate(
    standin: ReplicateStandIn, http: httpx.AsyncClient, time: FakeTime, **options
) -> ReplicateProvider:
    return ReplicateProvider(
        api_key=standin.token,
        http=http,
        base_url=standin.base_url,
        clock=time.clock,
        sleep=time.sleep,
        **options,
    )


async def test_runs_a_prediction_and_returns_its_media(replicate_standin, http, fake_time):
    provider = make_replicate(replicate_standin, http, fake_time)
    ids: list[str] = []

    async def on_submitted(request_id: str) -> None:
        ids.append(request_id)

    result = await provider.run(
        "black-forest-labs/flux-2-pro", {"prompt": "a fox"}, on_submitted=on_submitted
    )

    [prediction] = replicate_standin.submissions
    assert (
        prediction["input"] == {"prompt": "a fox"} and prediction["model"] == "black-forest-labs/flux-2-pro"
    )
    assert ids == [prediction["id"]] == [result.request_id]
    [image] = result.media
    assert image.same_host and image.content_type == "image/png"
    assert await fetch_media(http, image) == PNG
    assert result.data["status"] == "succeeded"


async def test_a_single_url_and_text_outputs(replicate_standin, http, fake_time):
    provider = make_replicate(replicate_standin, http, fake_time)

    replicate_standin.behaviour.output = lambda base, pid: f"{base}/files/{pid}.mp4"
    video = await provider.run("google/veo-3", {"prompt": "x"})
    assert [(m.content_type, m.same_host) for m in video.media] == [("video/mp4", True)]

    replicate_standin.behaviour.output = lambda base, pid: ["A ", "red ", "fox."]
    text = await provider.run("meta/meta-llama-3-8b-instruct", {"prompt": "x"})
    assert text.text == "A red fox." and text.media == ()


async def test_versioned_models_post_to_predictions_with_the_version(replicate_standin, http, fake_time):
    provider = make_replicate(replicate_standin, http, fake_time)

    await provider.run(
        "nightmareai/real-esrgan:f121d640bd286e1fdc67f9799164c1d5be36ff74576ee11c803ae5b665dd46aa",
        {"image": "https://example.com/a.png", "scale": 2},
    )

    assert replicate_standin.submissions[0]["version"].startswith("f121d640")


async def test_reports_queueing_and_tqdm_progress(replicate_standin, http, fake_time):
    replicate_standin.behaviour.queue_polls = 2
    replicate_standin.behaviour.progress_logs = (
        "Using seed: 1",
        " 25%|██▌       | 1/4",
        " 75%|███████▌  | 3/4",
    )
    provider = make_replicate(replicate_standin, http, fake_time)
    seen: list[JobStatus] = []

    async def on_progress(status: JobStatus) -> None:
        seen.append(status)

    await provider.run(
        "kwaivgi/kling-v2.5-turbo-pro", {"prompt": "x", "duration": 5}, on_progress=on_progress
    )

    assert [(s.state, s.progress) for s in seen] == [
        (JobState.QUEUED, None),
        (JobState.RUNNING, None),
        (JobState.RUNNING, 0.25),
        (JobState.RUNNING, 0.75),
        (JobState.COMPLETED, 1.0),
    ]
    assert seen[-1].logs[-1] == " 75%|███████▌  | 3/4"


async def test_a_failed_prediction_is_a_provider_error_with_the_models_error(
    replicate_standin, http, fake_time
):
    replicate_standin.behaviour.failure = "NSFW content detected. Try a different prompt."
    provider = make_replicate(replicate_standin, http, fake_time)

    with pytest.raises(ProviderError) as caught:
        await provider.run("black-forest-labs/flux-2-pro", {"prompt": "x"})

    assert str(caught.value) == "replicate: NSFW content detected. Try a different prompt."
    assert not caught.value.retryable
    assert caught.value.request_id == replicate_standin.submissions[0]["id"]


async def test_an_outage_is_retried_then_falls_back_with_backoff(replicate_standin, http, fake_time):
    replicate_standin.behaviour.submit_errors = [
        Scripted(503, {"title": "Service Unavailable", "detail": "try again", "status": 503}),
        Scripted(
            429,
            {"detail": "Request was throttled. Expected available in 3 seconds.", "status": 429},
            {"retry-after": "3"},
        ),
    ]
    provider = make_replicate(replicate_standin, http, fake_time)
    router = Router(
        retry=RetryPolicy(max_attempts=3, base_delay=1.0),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
        rand=lambda: 0.5,
    )

    result = await router.run([Route(provider, "google/imagen-4", {"prompt": "x"})])

    assert result.provider == "replicate"
    assert fake_time.sleeps[:2] == [0.5, 3.0]  # full jitter of 1 s, then exactly Retry-After


async def test_a_bad_token_reads_like_the_vendor_said(replicate_standin, http):
    provider = ReplicateProvider(api_key="r8_wrong", http=http, base_url=replicate_standin.base_url)

    with pytest.raises(ProviderError) as caught:
        await provider.run("google/imagen-4", {"prompt": "x"})

    assert caught.value.message == "Unauthenticated: You did not pass a valid authentication token"
    assert caught.value.status == 401 and not caught.value.retryable


async def test_cancelling_the_task_cancels_the_prediction(replicate_standin, http):
    replicate_standin.behaviour.queue_polls = 50
    parked = asyncio.Event()

    async def park(seconds: float) -> None:
        parked.set()
        await asyncio.Event().wait()

    provider = ReplicateProvider(
        api_key=replicate_standin.token, http=http, base_url=replicate_standin.base_url, sleep=park
    )
    task = asyncio.create_task(provider.run("google/veo-3", {"prompt": "x"}))
    await asyncio.wait_for(parked.wait(), 5)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    [prediction] = replicate_standin.submissions
    assert replicate_standin.cancels == [prediction["id"]] and prediction["status"] == "canceled"


async def test_a_prediction_cancelled_elsewhere_is_provider_cancelled(replicate_standin, http, fake_time):
    replicate_standin.behaviour.queue_polls = 5
    provider = make_replicate(replicate_standin, http, fake_time)
    request_id = await provider.submit("google/veo-3", {"prompt": "x"})
    await provider.cancel("google/veo-3", request_id)

    with pytest.raises(ProviderCancelled):
        await provider.run("google/veo-3", {"prompt": "x"}, resume_request_id=request_id)


async def test_resuming_polls_the_prediction_without_creating_another(replicate_standin, http, fake_time):
    replicate_standin.behaviour.queue_polls = 2
    provider = make_replicate(replicate_standin, http, fake_time)
    request_id = await provider.submit("bytedance/seedream-4", {"prompt": "x"})

    result = await Router(clock=fake_time.clock, sleep=fake_time.sleep).run(
        [Route(provider, "bytedance/seedream-4", {"prompt": "x"})],
        resume=Submission("replicate", "bytedance/seedream-4", request_id),
    )

    assert len(replicate_standin.submissions) == 1 and result.request_id == request_id
    assert result.media[0].url.endswith(f"{request_id}-0.png")


async def test_without_a_token_it_says_what_to_set(http):
    provider = ReplicateProvider(api_key=None, http=http)

    assert "REPLICATE_API_TOKEN" in (provider.unavailable_reason or "")
    with pytest.raises(ProviderUnavailable, match="REPLICATE_API_TOKEN"):
        await provider.run("google/veo-3", {"prompt": "x"})
