from __future__ import annotations

import asyncio

import httpx
import pytest

from nodeloom.providers import (
    FalProvider,
    JobState,
    JobStatus,
    Polling,
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
from .standins.fal import FalStandIn
from .standins.replicate import ReplicateStandIn


def make_fal(standin: FalStandIn, http: httpx.AsyncClient, time: FakeTime, **options) -> FalProvider:
    return FalProvider(
        api_key=standin.key,
        http=http,
        base_url=standin.base_url,
        clock=time.clock,
        sleep=time.sleep,
        **options,
    )


async def test_runs_a_job_and_returns_its_media_from_the_vendor_host(fal_standin, http, fake_time):
    fal = make_fal(fal_standin, http, fake_time)

    result = await fal.run("fal-ai/flux-2-pro", {"prompt": "a red fox", "image_size": "square_hd"})

    [job] = fal_standin.submissions
    assert job.arguments == {"prompt": "a red fox", "image_size": "square_hd"}
    assert result.provider == "fal" and result.request_id == job.request_id
    assert result.data["seed"] == 42
    [image] = result.media
    assert image.url == f"{fal_standin.base_url}/files/{job.request_id}.png"
    assert image.content_type == "image/png" and image.same_host
    assert await fetch_media(http, image) == PNG


async def test_reports_queue_positions_and_progress_logs(fal_standin, http, fake_time):
    fal_standin.behaviour.queue_positions = (3, 1)
    fal_standin.behaviour.progress_logs = ("loading", " 40%|████      | 4/10", "100%|██████████| 10/10")
    fal = make_fal(fal_standin, http, fake_time, polling=Polling(interval=0.5, max_interval=1.0, factor=2))
    seen: list[JobStatus] = []

    async def on_progress(status: JobStatus) -> None:
        seen.append(status)

    await fal.run("fal-ai/kling-video/v2.5-turbo/pro/text-to-video", {"prompt": "x"}, on_progress=on_progress)

    assert [(s.state, s.queue_position) for s in seen[:2]] == [(JobState.QUEUED, 3), (JobState.QUEUED, 1)]
    assert [(s.state, s.message, s.progress) for s in seen[2:]] == [
        (JobState.RUNNING, "loading", None),
        (JobState.RUNNING, " 40%|████      | 4/10", 0.4),
        (JobState.RUNNING, "100%|██████████| 10/10", 1.0),
        (JobState.COMPLETED, "100%|██████████| 10/10", 1.0),
    ]
    assert fake_time.sleeps == [0.5, 1.0, 1.0, 1.0, 1.0]  # the poll interval grows to its cap


async def test_a_vendor_failure_is_a_provider_error_with_the_vendors_words(fal_standin, http, fake_time):
    fal_standin.behaviour.failure = (500, "CUDA out of memory")
    fal = make_fal(fal_standin, http, fake_time)

    with pytest.raises(ProviderError) as caught:
        await fal.run("fal-ai/flux/dev", {"prompt": "x"})

    error = caught.value
    assert (error.provider, error.status, error.retryable) == ("fal", 500, True)
    assert str(error) == "fal: CUDA out of memory (HTTP 500)"
    assert error.request_id == fal_standin.submissions[0].request_id


async def test_a_validation_error_names_the_field_and_is_final(fal_standin, http, fake_time):
    fal_standin.behaviour.submit_errors = [
        Scripted(
            422,
            {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]},
        )
    ]
    fal = make_fal(fal_standin, http, fake_time)

    with pytest.raises(ProviderError) as caught:
        await fal.run("fal-ai/flux/dev", {})

    assert caught.value.message == "prompt: field required"
    assert caught.value.status == 422 and not caught.value.retryable


async def test_a_429_is_retried_after_the_vendors_retry_after(fal_standin, http, fake_time):
    fal_standin.behaviour.submit_errors = [
        Scripted(429, {"detail": "Too many requests"}, {"retry-after": "7"})
    ]
    router = Router(retry=RetryPolicy(max_attempts=3), clock=fake_time.clock, sleep=fake_time.sleep)

    result = await router.run(
        [Route(make_fal(fal_standin, http, fake_time), "fal-ai/flux/dev", {"prompt": "x"})]
    )

    assert result.provider == "fal"
    assert fake_time.sleeps[0] == 7.0
    assert len(fal_standin.submissions) == 1


async def test_a_slow_vendor_times_out_and_the_next_provider_answers(
    fal_standin, replicate_standin: ReplicateStandIn, http, fake_time
):
    fal_standin.behaviour.submit_delay = 0.5
    fal = make_fal(fal_standin, http, fake_time, request_timeout=0.05)
    replicate = ReplicateProvider(
        api_key=replicate_standin.token,
        http=http,
        base_url=replicate_standin.base_url,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    router = Router(retry=RetryPolicy(max_attempts=1), clock=fake_time.clock, sleep=fake_time.sleep)

    result = await router.run(
        [
            Route(fal, "fal-ai/flux-2-pro", {"prompt": "x"}),
            Route(replicate, "black-forest-labs/flux-2-pro", {"prompt": "x"}),
        ]
    )

    assert result.provider == "replicate"
    assert len(replicate_standin.submissions) == 1
    assert fal_standin.auth_seen == [f"Key {fal_standin.key}"]  # fal was asked once, and gave up on


async def test_a_job_that_outlives_its_attempt_is_cancelled_and_the_route_falls_back(
    fal_standin, replicate_standin: ReplicateStandIn, http, fake_time
):
    fal_standin.behaviour.queue_positions = tuple(range(100, 0, -1))
    fal = make_fal(fal_standin, http, fake_time)
    replicate = ReplicateProvider(
        api_key=replicate_standin.token,
        http=http,
        base_url=replicate_standin.base_url,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    router = Router(
        retry=RetryPolicy(max_attempts=1), attempt_timeout=10, clock=fake_time.clock, sleep=fake_time.sleep
    )

    result = await router.run(
        [
            Route(fal, "fal-ai/veo3", {"prompt": "x"}),
            Route(replicate, "google/veo-3", {"prompt": "x"}),
        ]
    )

    assert result.provider == "replicate"
    assert fal_standin.cancels == [fal_standin.submissions[0].request_id]


async def test_cancelling_the_task_sends_the_vendor_cancel(fal_standin, http):
    fal_standin.behaviour.queue_positions = (5, 4, 3)
    submitted = asyncio.Event()
    never = asyncio.Event()

    async def park(seconds: float) -> None:
        await never.wait()

    async def on_submitted(request_id: str) -> None:
        submitted.set()

    fal = FalProvider(api_key=fal_standin.key, http=http, base_url=fal_standin.base_url, sleep=park)
    task = asyncio.create_task(fal.run("fal-ai/veo3", {"prompt": "x"}, on_submitted=on_submitted))
    await asyncio.wait_for(submitted.wait(), 5)
    await asyncio.sleep(0.05)  # let the first status poll land, so the task waits in its sleep
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert fal_standin.cancels == [fal_standin.submissions[0].request_id]


async def test_resuming_polls_the_existing_request_without_submitting_again(fal_standin, http, fake_time):
    fal_standin.behaviour.queue_positions = (2, 1, 0)
    fal = make_fal(fal_standin, http, fake_time)
    # A worker submitted, persisted the id, and died before the job finished.
    request_id = await fal.submit("fal-ai/flux-2-pro/edit", {"prompt": "x"})
    persisted = Submission("fal", "fal-ai/flux-2-pro/edit", request_id)
    announced: list[Submission] = []

    async def on_submitted(submission: Submission) -> None:
        announced.append(submission)

    result = await Router(clock=fake_time.clock, sleep=fake_time.sleep).run(
        [Route(fal, "fal-ai/flux-2-pro/edit", {"prompt": "x"})], resume=persisted, on_submitted=on_submitted
    )

    assert len(fal_standin.submissions) == 1
    assert result.request_id == request_id and announced == []
    assert result.media[0].url.endswith(f"/files/{request_id}.png")
    assert fal_standin.jobs[request_id].polls == 4


async def test_a_resumed_id_the_vendor_forgot_is_submitted_afresh(fal_standin, http, fake_time):
    fal = make_fal(fal_standin, http, fake_time)
    announced: list[Submission] = []

    async def on_submitted(submission: Submission) -> None:
        announced.append(submission)

    result = await Router(clock=fake_time.clock, sleep=fake_time.sleep).run(
        [Route(fal, "fal-ai/flux/dev", {"prompt": "x"})],
        resume=Submission("fal", "fal-ai/flux/dev", "gone-long-ago"),
        on_submitted=on_submitted,
    )

    assert [job.request_id for job in fal_standin.submissions] == [result.request_id]
    assert announced == [Submission("fal", "fal-ai/flux/dev", result.request_id)]


async def test_a_bad_key_is_final_and_not_retried(fal_standin, http, fake_time):
    fal = FalProvider(api_key="wrong", http=http, base_url=fal_standin.base_url)
    router = Router(clock=fake_time.clock, sleep=fake_time.sleep)

    with pytest.raises(ProviderError) as caught:
        await router.run([Route(fal, "fal-ai/flux/dev", {"prompt": "x"})])

    assert caught.value.status == 401 and not caught.value.retryable
    assert fake_time.sleeps == [] and fal_standin.auth_seen == ["Key wrong"]


async def test_without_a_key_it_says_what_to_set(http):
    fal = FalProvider(api_key=None, http=http)

    assert fal.unavailable_reason is not None and "FAL_KEY" in fal.unavailable_reason
    with pytest.raises(ProviderUnavailable, match="FAL_KEY"):
        await fal.run("fal-ai/flux/dev", {"prompt": "x"})


async def test_namespaced_apps_are_polled_under_their_namespace(fal_standin, http, fake_time):
    fal = make_fal(fal_standin, http, fake_time)

    result = await fal.run("workflows/someone/my-flow/run", {"prompt": "x"})

    assert fal_standin.submissions[0].app == "workflows/someone/my-flow"
    assert result.media and result.media[0].same_host
