"""One set of cases for the Provider contract (`nodeloom.providers.base`), run over every implementation: the
in-memory MockProvider and the real adapters for fal, Replicate, OpenAI-compatible servers and Gemini, each talking
real HTTP to its vendor's stand-in from tests/providers/standins.

A case that only means something for a vendor with a job queue (`JobProvider`: fal, Replicate, Mock) is
parametrised over those alone; the synchronous ones (OpenAI-compatible, Gemini) answer on the request itself and
have no job to announce, poll or resume. Time is the providers' FakeTime: polling and backoff never sleep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
import pytest
from tests.providers.conftest import (  # noqa: F401  (fixtures, used through getfixturevalue)
    FakeTime,
    _fal_server,
    _gemini_server,
    _openai_server,
    _replicate_server,
    fake_time,
    fal_standin,
    gemini_standin,
    http,
    openai_standin,
    replicate_standin,
)
from tests.providers.standins._server import PNG, Scripted
from tests.providers.standins.fal import FalStandIn
from tests.providers.standins.gemini import GeminiStandIn, exhausted
from tests.providers.standins.openai import OpenAIStandIn, rate_limited
from tests.providers.standins.replicate import ReplicateStandIn
from tests.providers.test_fal import make_fal
from tests.providers.test_gemini import make_gemini
from tests.providers.test_openai_compat import make_openai
from tests.providers.test_replicate import make_replicate

from nodeloom.providers import (
    FalProvider,
    GeminiProvider,
    JobProvider,
    JobState,
    JobStatus,
    Media,
    MockProvider,
    OpenAICompatProvider,
    Polling,
    Provider,
    ProviderCancelled,
    ProviderError,
    ProviderResult,
    ProviderTimeout,
    ProviderUnavailable,
    ReplicateProvider,
    RetryPolicy,
    Route,
    Router,
    fetch_media,
)

JOBS = ["mock", "fal", "replicate"]
SYNCHRONOUS = ["openai", "gemini"]
ALL = JOBS + SYNCHRONOUS
RETRY_AFTER = 7


# --- each implementation, and how its vendor is scripted -----------------------------------------------------

class Vendor:
    """One implementation under test: the provider, a model and arguments it runs, and its vendor's script.

    Script the vendor before reading `provider` (the Mock's job length is fixed when it is built).
    """

    name: ClassVar[str]
    setting: ClassVar[str]
    """What `unavailable_reason` must name when the provider is not configured."""
    model: ClassVar[str]
    arguments: ClassVar[dict[str, Any]]
    short_deadline: ClassVar[float]
    """Seconds from now that end in the middle of a held call."""

    def __init__(self, time: FakeTime, client: httpx.AsyncClient):
        self.time = time
        self.http = client

    @property
    def provider(self) -> Provider:
        raise NotImplementedError

    def unconfigured(self) -> Provider:
        raise NotImplementedError

    def asked(self) -> int:
        """Calls that reached the vendor and were accepted (submissions; requests for synchronous vendors)."""
        raise NotImplementedError

    def rate_limit(self, times: int) -> None:
        """The next `times` calls are answered with the vendor's 429, asking to wait RETRY_AFTER seconds."""
        raise NotImplementedError

    def outage(self, times: int) -> str:
        """The next `times` calls are answered with the vendor's 503; returns the vendor's words for it."""
        raise NotImplementedError

    def errors_left(self) -> int:
        raise NotImplementedError

    def fail(self) -> str:
        """The work fails at the vendor; returns the vendor's words for it."""
        raise NotImplementedError

    def hold(self) -> None:
        """The vendor takes far longer than `short_deadline`."""
        raise NotImplementedError


class JobVendor(Vendor):
    short_deadline = 2.0  # fake seconds: a few polls

    @property
    def provider(self) -> JobProvider:
        raise NotImplementedError

    def submitted(self) -> list[str]:
        raise NotImplementedError

    def polls(self, request_id: str) -> int:
        """Status polls the vendor has answered for the job."""
        raise NotImplementedError

    def cancels(self) -> list[str]:
        raise NotImplementedError

    def report_progress(self) -> None:
        """The job runs a while, reporting progress (tqdm lines in its logs at 25% and 75%, or Mock's own)."""
        raise NotImplementedError

    def prompt(self, result: ProviderResult) -> Any:
        """The prompt of the job `result` is the answer to."""
        raise NotImplementedError

    def asked(self) -> int:
        return len(self.submitted())


class MockVendor(JobVendor):
    name = "mock"
    setting = "MOCK_API_KEY"
    model = "mock/flux"
    arguments = {"prompt": "a red fox"}

    def __init__(self, time: FakeTime, client: httpx.AsyncClient):
        super().__init__(time, client)
        self.length = 0
        self.errors: list[ProviderError] = []
        self.failure: str | None = None
        self._provider: MockProvider | None = None

    def _answer(self, model: str, arguments: Mapping[str, Any]) -> ProviderResult:
        if self.errors:
            raise self.errors.pop(0)
        if self.failure is not None:
            raise ProviderError(self.failure, provider=self.name)
        return ProviderResult(provider=self.name, model=model, data={"prompt": arguments.get("prompt")},
                              media=(Media(data=PNG, content_type="image/png"),))

    def _build(self, **options: Any) -> MockProvider:
        # polled like the vendors (DEFAULT_POLLING), on fake time
        return MockProvider(self.name, self._answer, polls=self.length, clock=self.time.clock,
                            sleep=self.time.sleep, polling=Polling(), **options)

    @property
    def provider(self) -> MockProvider:
        if self._provider is None:
            self._provider = self._build()
        return self._provider

    def unconfigured(self) -> MockProvider:
        return self._build(unavailable_reason=f"set {self.setting} (a mock vendor's key)")

    def submitted(self) -> list[str]:
        return list(self.provider.jobs)

    def polls(self, request_id: str) -> int:
        return self.length - self.provider.jobs[request_id].polls_left

    def cancels(self) -> list[str]:
        return list(self.provider.cancelled)

    def rate_limit(self, times: int) -> None:
        self.errors = [ProviderError("Too many requests", provider=self.name, status=429, retryable=True,
                                     retry_after=RETRY_AFTER) for _ in range(times)]

    def outage(self, times: int) -> str:
        words = "the mock vendor is down"
        self.errors = [ProviderError(words, provider=self.name, status=503, retryable=True) for _ in range(times)]
        return words

    def errors_left(self) -> int:
        return len(self.errors)

    def fail(self) -> str:
        self.failure = "the mock model ran out of memory"
        return self.failure

    def hold(self) -> None:
        self.length = 1000

    def report_progress(self) -> None:
        self.length = 3

    def prompt(self, result: ProviderResult) -> Any:
        return result.data["prompt"]


class FalVendor(JobVendor):
    name = "fal"
    setting = "FAL_KEY"
    model = "fal-ai/flux-2-pro"
    arguments = {"prompt": "a red fox", "image_size": "square_hd"}

    def __init__(self, time: FakeTime, client: httpx.AsyncClient, standin: FalStandIn):
        super().__init__(time, client)
        self.standin = standin
        self._provider = make_fal(standin, client, time)

    @property
    def provider(self) -> FalProvider:
        return self._provider

    def unconfigured(self) -> FalProvider:
        return FalProvider(api_key=None, http=self.http, base_url=self.standin.base_url)

    def submitted(self) -> list[str]:
        return [job.request_id for job in self.standin.submissions]

    def polls(self, request_id: str) -> int:
        return self.standin.jobs[request_id].polls

    def cancels(self) -> list[str]:
        return list(self.standin.cancels)

    def rate_limit(self, times: int) -> None:
        self.standin.behaviour.submit_errors = [
            Scripted(429, {"detail": "Too many requests"}, {"retry-after": str(RETRY_AFTER)}) for _ in range(times)
        ]

    def outage(self, times: int) -> str:
        words = "Service temporarily unavailable"
        self.standin.behaviour.submit_errors = [Scripted(503, {"detail": words}) for _ in range(times)]
        return words

    def errors_left(self) -> int:
        return len(self.standin.behaviour.submit_errors)

    def fail(self) -> str:
        self.standin.behaviour.failure = (500, "CUDA out of memory")
        return "CUDA out of memory"

    def hold(self) -> None:
        self.standin.behaviour.queue_positions = tuple(range(100, 0, -1))

    def report_progress(self) -> None:
        self.standin.behaviour.queue_positions = (1,)
        self.standin.behaviour.progress_logs = ("loading", " 25%|██▌       | 1/4", " 75%|███████▌  | 3/4")

    def prompt(self, result: ProviderResult) -> Any:
        return result.data["prompt"]


class ReplicateVendor(JobVendor):
    name = "replicate"
    setting = "REPLICATE_API_TOKEN"
    model = "black-forest-labs/flux-2-pro"
    arguments = {"prompt": "a red fox"}

    def __init__(self, time: FakeTime, client: httpx.AsyncClient, standin: ReplicateStandIn):
        super().__init__(time, client)
        self.standin = standin
        self._provider = make_replicate(standin, client, time)

    @property
    def provider(self) -> ReplicateProvider:
        return self._provider

    def unconfigured(self) -> ReplicateProvider:
        return ReplicateProvider(api_key=None, http=self.http, base_url=self.standin.base_url)

    def submitted(self) -> list[str]:
        return [prediction["id"] for prediction in self.standin.submissions]

    def polls(self, request_id: str) -> int:
        return self.standin.polls[request_id]

    def cancels(self) -> list[str]:
        return list(self.standin.cancels)

    def rate_limit(self, times: int) -> None:
        self.standin.behaviour.submit_errors = [
            Scripted(429, {"detail": f"Request was throttled. Expected available in {RETRY_AFTER} seconds.",
                           "status": 429}, {"retry-after": str(RETRY_AFTER)})
            for _ in range(times)
        ]

    def outage(self, times: int) -> str:
        self.standin.behaviour.submit_errors = [
            Scripted(503, {"title": "Service Unavailable", "detail": "try again later", "status": 503})
            for _ in range(times)
        ]
        return "Service Unavailable: try again later"

    def errors_left(self) -> int:
        return len(self.standin.behaviour.submit_errors)

    def fail(self) -> str:
        self.standin.behaviour.failure = "NSFW content detected. Try a different prompt."
        return self.standin.behaviour.failure

    def hold(self) -> None:
        self.standin.behaviour.queue_polls = 100

    def report_progress(self) -> None:
        self.standin.behaviour.queue_polls = 1
        self.standin.behaviour.progress_logs = ("Using seed: 1", " 25%|██▌       | 1/4", " 75%|███████▌  | 3/4")

    def prompt(self, result: ProviderResult) -> Any:
        return result.data["input"]["prompt"]


class OpenAIVendor(Vendor):
    name = "openai"
    setting = "OPENAI_API_KEY"
    model = "gpt-image-1"
    arguments = {"prompt": "a red fox", "size": "1024x1024"}
    short_deadline = 0.2  # real seconds of an HTTP timeout; the held answer takes HOLD

    HOLD = 2.0

    def __init__(self, time: FakeTime, client: httpx.AsyncClient, standin: OpenAIStandIn):
        super().__init__(time, client)
        self.standin = standin
        self._provider = make_openai(standin, client, clock=time.clock)

    @property
    def provider(self) -> OpenAICompatProvider:
        return self._provider

    def unconfigured(self) -> OpenAICompatProvider:
        return OpenAICompatProvider(api_key=None, http=self.http, base_url=self.standin.base_url + "/v1")

    def asked(self) -> int:
        return len(self.standin.requests)

    def rate_limit(self, times: int) -> None:
        self.standin.behaviour.errors = [rate_limited(RETRY_AFTER) for _ in range(times)]

    def outage(self, times: int) -> str:
        words = "The server is overloaded or not ready yet."
        self.standin.behaviour.errors = [
            Scripted(503, {"error": {"message": words, "type": "server_error", "param": None, "code": None}})
            for _ in range(times)
        ]
        return words

    def errors_left(self) -> int:
        return len(self.standin.behaviour.errors)

    def fail(self) -> str:
        words = "Your request was rejected as a result of our safety system."
        self.standin.behaviour.errors = [
            Scripted(400, {"error": {"message": words, "type": "invalid_request_error", "param": None,
                                     "code": "moderation_blocked"}})
        ]
        return words

    def hold(self) -> None:
        self.standin.behaviour.delay = self.HOLD


class GeminiVendor(Vendor):
    name = "gemini"
    setting = "GEMINI_API_KEY"
    model = "gemini-2.5-flash-image"
    arguments = {"prompt": "a red fox", "aspect_ratio": "1:1"}
    short_deadline = 0.2

    HOLD = 2.0

    def __init__(self, time: FakeTime, client: httpx.AsyncClient, standin: GeminiStandIn):
        super().__init__(time, client)
        self.standin = standin
        self._provider = make_gemini(standin, client, clock=time.clock)

    @property
    def provider(self) -> GeminiProvider:
        return self._provider

    def unconfigured(self) -> GeminiProvider:
        return GeminiProvider(api_key=None, http=self.http, base_url=self.standin.base_url)

    def asked(self) -> int:
        return len(self.standin.requests)

    def rate_limit(self, times: int) -> None:
        self.standin.behaviour.errors = [exhausted(RETRY_AFTER) for _ in range(times)]  # the wait is in the body

    def outage(self, times: int) -> str:
        words = "The model is overloaded. Please try again later."
        self.standin.behaviour.errors = [
            Scripted(503, {"error": {"code": 503, "message": words, "status": "UNAVAILABLE"}}) for _ in range(times)
        ]
        return words

    def errors_left(self) -> int:
        return len(self.standin.behaviour.errors)

    def fail(self) -> str:
        self.standin.behaviour.block_reason = "PROHIBITED_CONTENT"
        return "PROHIBITED_CONTENT"

    def hold(self) -> None:
        self.standin.behaviour.delay = self.HOLD


@pytest.fixture
def vendor(request: pytest.FixtureRequest) -> Vendor:
    """The implementation named by the case's parameter (`indirect`), its stand-in reset."""
    name: str = request.param
    time: FakeTime = request.getfixturevalue("fake_time")
    client: httpx.AsyncClient = request.getfixturevalue("http")
    if name == "mock":
        return MockVendor(time, client)
    standin = request.getfixturevalue(f"{name}_standin")
    kinds: dict[str, Any] = {"fal": FalVendor, "replicate": ReplicateVendor, "openai": OpenAIVendor,
                             "gemini": GeminiVendor}
    built: Vendor = kinds[name](time, client, standin)
    return built


def over(names: list[str], **xfails: str) -> pytest.MarkDecorator:
    """Parametrise `vendor` over `names`; `xfails` marks an implementation that does not honour the case yet
    (strict: once it does, the mark has to go)."""
    params = [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=xfails[n])) if n in xfails else n
              for n in names]
    return pytest.mark.parametrize("vendor", params, indirect=True)


# --- the contract -------------------------------------------------------------------------------------------

@over(ALL)
async def test_run_returns_a_result_naming_the_provider_and_model_with_media_and_data(vendor: Vendor) -> None:
    provider = vendor.provider

    result = await provider.run(vendor.model, vendor.arguments)

    assert isinstance(result, ProviderResult)
    assert result.provider == provider.name == vendor.name
    assert result.model == vendor.model
    assert isinstance(result.data, dict) and result.data
    assert result.media
    for media in result.media:
        assert media.content_type == "image/png"
        assert await fetch_media(vendor.http, media) == PNG
    assert vendor.asked() == 1


@over(JOBS)
async def test_on_submitted_gets_the_vendors_request_id_before_any_polling(vendor: JobVendor) -> None:
    events: list[tuple[str, Any]] = []

    async def on_submitted(request_id: str) -> None:
        events.append(("submitted", (request_id, vendor.polls(request_id))))

    async def on_progress(status: JobStatus) -> None:
        events.append(("progress", status.state))

    result = await vendor.provider.run(vendor.model, vendor.arguments, on_submitted=on_submitted,
                                       on_progress=on_progress)

    [request_id] = vendor.submitted()
    assert events[0] == ("submitted", (request_id, 0))  # persisted before the job was polled at all
    assert [kind for kind, _ in events].count("submitted") == 1
    assert events[-1] == ("progress", JobState.COMPLETED)
    assert vendor.prompt(result) == vendor.arguments["prompt"]


@over(JOBS)
async def test_the_result_carries_the_request_id_on_submitted_got(vendor: JobVendor) -> None:
    announced: list[str] = []

    async def on_submitted(request_id: str) -> None:
        announced.append(request_id)

    result = await vendor.provider.run(vendor.model, vendor.arguments, on_submitted=on_submitted)

    assert announced == vendor.submitted() == [result.request_id]


@over(JOBS)
async def test_resuming_polls_the_persisted_job_without_submitting_again(vendor: JobVendor) -> None:
    vendor.report_progress()  # the job is still running when the worker comes back for it
    provider = vendor.provider
    request_id = await provider.submit(vendor.model, {**vendor.arguments, "prompt": "the persisted job"})
    announced: list[str] = []

    async def on_submitted(request_id: str) -> None:
        announced.append(request_id)

    result = await provider.run(vendor.model, vendor.arguments, resume_request_id=request_id,
                                on_submitted=on_submitted)

    assert vendor.submitted() == [request_id]  # exactly one submission: the one before the restart
    assert vendor.polls(request_id) > 0 and announced == []
    assert vendor.prompt(result) == "the persisted job"  # the answer is that job's, not a new one's


@over(JOBS)
async def test_progress_is_reported_while_the_job_runs(vendor: JobVendor) -> None:
    vendor.report_progress()
    seen: list[JobStatus] = []

    async def on_progress(status: JobStatus) -> None:
        seen.append(status)

    await vendor.provider.run(vendor.model, vendor.arguments, on_progress=on_progress)

    running = [s.progress for s in seen if s.state is JobState.RUNNING and s.progress is not None]
    assert len(running) >= 2 and all(0 < p < 1 for p in running)
    assert running == sorted(running) and running[0] < running[-1]
    assert (seen[-1].state, seen[-1].progress) == (JobState.COMPLETED, 1.0)
    assert all(s.state is not JobState.COMPLETED for s in seen[:-1])


@over(SYNCHRONOUS)
async def test_a_synchronous_vendor_announces_no_job(vendor: Vendor) -> None:
    announced: list[str] = []

    async def on_submitted(request_id: str) -> None:
        announced.append(request_id)

    result = await vendor.provider.run(vendor.model, vendor.arguments, on_submitted=on_submitted)

    assert result.media and announced == [] and vendor.asked() == 1


@over(ALL)
async def test_a_429_is_rate_limited_with_retry_after_once_the_retries_are_spent(vendor: Vendor) -> None:
    vendor.rate_limit(times=3)
    router = Router(retry=RetryPolicy(max_attempts=2), clock=vendor.time.clock, sleep=vendor.time.sleep)

    with pytest.raises(ProviderError) as caught:
        await router.run([Route(vendor.provider, vendor.model, vendor.arguments)])

    error = caught.value
    assert not isinstance(error, ProviderTimeout | ProviderCancelled | ProviderUnavailable)
    assert (error.provider, error.status, error.retryable, error.retry_after) == (vendor.name, 429, True, RETRY_AFTER)
    assert vendor.time.sleeps == [RETRY_AFTER]  # waited as the vendor asked, once, between the two attempts
    assert vendor.errors_left() == 1  # two attempts, as configured, not three


@over(ALL)
async def test_a_5xx_is_a_retryable_vendor_error_once_the_retries_are_spent(vendor: Vendor) -> None:
    words = vendor.outage(times=3)
    router = Router(retry=RetryPolicy(max_attempts=2, base_delay=1.0), clock=vendor.time.clock,
                    sleep=vendor.time.sleep, rand=lambda: 0.5)

    with pytest.raises(ProviderError) as caught:
        await router.run([Route(vendor.provider, vendor.model, vendor.arguments)])

    error = caught.value
    assert not isinstance(error, ProviderTimeout | ProviderCancelled | ProviderUnavailable)
    assert (error.provider, error.status, error.retryable, error.retry_after) == (vendor.name, 503, True, None)
    assert words in error.message
    assert vendor.time.sleeps == [0.5]  # one full-jitter backoff between the two attempts
    assert vendor.errors_left() == 1  # two attempts, as configured, not three


@over(ALL)
async def test_a_failure_at_the_vendor_raises_with_the_vendors_words(vendor: Vendor) -> None:
    words = vendor.fail()

    with pytest.raises(ProviderError) as caught:
        await vendor.provider.run(vendor.model, vendor.arguments)

    error = caught.value
    assert not isinstance(error, ProviderTimeout | ProviderCancelled | ProviderUnavailable)
    assert error.provider == vendor.name and words in str(error)
    if isinstance(vendor, JobVendor):  # the job was accepted, then failed: nothing was submitted twice
        assert len(vendor.submitted()) == 1


@over(ALL, mock="MockProvider.submit does not check its deadline: routing tests drive mocks on the real clock "
                "against deadlines in fake time, so a check there would need every such test re-pointed first")
async def test_a_deadline_already_passed_times_out_without_asking_the_vendor(vendor: Vendor) -> None:
    provider = vendor.provider

    with pytest.raises(ProviderTimeout) as caught:
        await provider.run(vendor.model, vendor.arguments, deadline=vendor.time.clock() - 1)

    assert caught.value.provider == vendor.name and caught.value.retryable
    assert vendor.asked() == 0


@over(ALL)
async def test_a_deadline_too_short_for_the_vendor_times_out(vendor: Vendor) -> None:
    vendor.hold()
    provider = vendor.provider

    with pytest.raises(ProviderTimeout) as caught:
        await provider.run(vendor.model, vendor.arguments, deadline=vendor.time.clock() + vendor.short_deadline)

    assert caught.value.provider == vendor.name and caught.value.retryable
    if isinstance(vendor, JobVendor):  # the abandoned job is cancelled, so it stops billing
        assert vendor.cancels() == vendor.submitted() and len(vendor.submitted()) == 1


@over(ALL)
async def test_unavailable_reason_is_none_when_configured_and_names_the_setting_when_not(vendor: Vendor) -> None:
    assert vendor.provider.unavailable_reason is None

    bare = vendor.unconfigured()
    reason = bare.unavailable_reason
    assert isinstance(reason, str) and vendor.setting in reason and len(reason.split()) > 3
    with pytest.raises(ProviderUnavailable) as caught:
        await bare.run(vendor.model, vendor.arguments)
    assert caught.value.provider == vendor.name and vendor.setting in str(caught.value)
    assert vendor.asked() == 0
