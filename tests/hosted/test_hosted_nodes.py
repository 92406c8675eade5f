"""Hosted model nodes run through the API server against the vendor stand-ins: progress, queueing,
failures, rate limits, timeouts with fallback, deadlines, cancellation, and copying outputs in."""

from __future__ import annotations

import httpx
from tests.hosted.helpers import events, flux_graph, node_memory, start_execution, wait_until, with_packs
from tests.providers.standins._server import PNG, Scripted, serve
from tests.providers.standins.fal import FalStandIn
from tests.support.server import publish, run_to_end, wait_status


def test_a_flux_run_reports_queue_and_progress_and_copies_the_image_in(hosted_server, fal_standin,
                                                                        replicate_standin):
    fal_standin.behaviour.queue_positions = (2, 1)
    fal_standin.behaviour.progress_logs = ("loading weights", " 50%|█████     | 5/10", "100%|██████████| 10/10")
    server = hosted_server()
    _account, key = server.account()
    with server.client(key) as c:
        wid = publish(c, flux_graph(params={"aspectRatio": "16:9", "seed": 7}))
        done = run_to_end(c, wid, {"prompt": "a red fox at dawn"})

        assert done["status"] == "COMPLETED", done
        [job] = fal_standin.submissions
        assert job.endpoint == "fal-ai/flux-2-pro"
        assert job.arguments == {"prompt": "a red fox at dawn", "image_size": "landscape_16_9", "seed": 7,
                                 "num_images": 1}
        assert replicate_standin.submissions == []
        gen = done["nodes"]["gen"]
        assert gen["status"] == "COMPLETED" and gen["cached"] is False
        assert gen["outputs"]["vendor"] == {"provider": "fal", "model": "fal-ai/flux-2-pro",
                                            "requestId": job.request_id, "byok": False}
        image = done["outputs"]["image"]
        assert image["contentType"] == "image/png" and (image["width"], image["height"]) == (1, 1)
        assert image["url"].startswith(server.url) or image["url"].startswith("/api/v1/files/")

        progress = [data for kind, data in events(c, done["executionId"])
                    if kind == "node.progress" and data["nodeId"] == "gen"]
        messages = [p.get("message") for p in progress]
        assert "waiting in the vendor's queue (position 2)" in messages
        assert "waiting in the vendor's queue (position 1)" in messages
        assert "loading weights" in messages
        halfway = next(p for p in progress if p.get("message") == " 50%|█████     | 5/10")
        assert abs(halfway["progress"] - (0.05 + 0.85 * 0.5)) < 1e-9
        assert progress[-1]["progress"] == 1.0

        assert done["creditsUsed"] == 19  # FLUX.2 [pro]: 19 credits per image, on the operator's key

    memory = node_memory(server, done["executionId"], "gen")
    assert memory["vendor_job"] == {"provider": "fal", "model": "fal-ai/flux-2-pro", "requestId": job.request_id}
    assert memory["byok"] is False


def test_a_vendor_failure_fails_the_node_with_the_vendors_words_and_no_fallback(hosted_server, fal_standin,
                                                                                 replicate_standin):
    fal_standin.behaviour.failure = (422, "The prompt was flagged by the safety checker")
    server = hosted_server()
    _account, key = server.account(credits=100)
    with server.client(key) as c:
        wid = publish(c, flux_graph())
        done = run_to_end(c, wid)
        account = c.get("/api/v1/account").json()

    assert done["status"] == "FAILED"
    assert done["error"]["nodeId"] == "gen" and done["error"]["code"] == "provider_error"
    assert done["error"]["message"] == (
        "FLUX.2 [pro] failed: fal: The prompt was flagged by the safety checker (HTTP 422)")
    assert done["nodes"]["gen"]["status"] == "FAILED"
    assert not done["nodes"]["gen"].get("credits")
    assert account["credits"] == 100  # a failed node is never charged
    assert replicate_standin.submissions == []  # a final error: another vendor would be asked the same


def test_a_replicate_prediction_that_fails_is_a_failed_node(hosted_server, fal_standin, replicate_standin):
    replicate_standin.behaviour.failure = "NSFW content detected. Try running it again, or try a different prompt."
    server = hosted_server({"NODELOOM_PROVIDER_ORDER": "replicate,fal"})
    _account, key = server.account()
    with server.client(key) as c:
        done = run_to_end(c, publish(c, flux_graph()))

    assert done["status"] == "FAILED"
    assert "replicate: NSFW content detected" in done["error"]["message"]
    assert [p["model"] for p in replicate_standin.submissions] == ["black-forest-labs/flux-2-pro"]
    assert fal_standin.submissions == []


def test_a_429_with_retry_after_is_waited_out_on_the_same_vendor(hosted_server, fal_standin, replicate_standin):
    fal_standin.behaviour.submit_errors = [Scripted(429, {"detail": "Too many concurrent requests"},
                                                    {"retry-after": "1"})]
    server = hosted_server()
    _account, key = server.account()
    with server.client(key) as c:
        done = run_to_end(c, publish(c, flux_graph()))

    assert done["status"] == "COMPLETED", done
    assert fal_standin.behaviour.submit_errors == []  # the 429 was answered …
    assert len(fal_standin.submissions) == 1  # … and the retry queued the job
    assert done["nodes"]["gen"]["outputs"]["vendor"]["provider"] == "fal"
    assert replicate_standin.submissions == []


def test_a_vendor_that_times_out_is_cancelled_and_the_next_one_serves(hosted_server, fal_standin,
                                                                       replicate_standin):
    fal_standin.behaviour.queue_positions = (5,) * 100_000  # stuck in fal's queue
    server = hosted_server({"NODELOOM_PROVIDER_ATTEMPT_TIMEOUT_SECONDS": "0.5",
                            "NODELOOM_PROVIDER_MAX_ATTEMPTS": "1"})
    _account, key = server.account()
    with server.client(key) as c:
        done = run_to_end(c, publish(c, flux_graph()))

    assert done["status"] == "COMPLETED", done
    [stuck] = fal_standin.submissions
    assert fal_standin.cancels == [stuck.request_id]  # nobody keeps paying for the abandoned job
    [prediction] = replicate_standin.submissions
    vendor = done["nodes"]["gen"]["outputs"]["vendor"]
    assert (vendor["provider"], vendor["requestId"]) == ("replicate", prediction["id"])
    memory = node_memory(server, done["executionId"], "gen")
    assert memory["vendor_job"]["requestId"] == prediction["id"]  # a resume polls the job that is live


def test_the_per_node_deadline_fails_the_node_and_cancels_the_job(hosted_server, fal_standin):
    fal_standin.behaviour.queue_positions = (1,) * 100_000
    server = hosted_server({"NODELOOM_PROVIDER_DEADLINE_SECONDS": "0.5", "NODELOOM_REPLICATE_URL": None,
                            "REPLICATE_API_TOKEN": None})
    _account, key = server.account()
    with server.client(key) as c:
        done = run_to_end(c, publish(c, flux_graph()))

    assert done["status"] == "FAILED"
    assert done["error"]["code"] == "provider_timeout"
    assert "did not finish before the deadline" in done["error"]["message"]
    [job] = fal_standin.submissions
    assert fal_standin.cancels == [job.request_id]


def test_cancelling_the_execution_cancels_the_vendor_job(hosted_server, fal_standin):
    fal_standin.behaviour.queue_positions = (3,) * 100_000
    server = hosted_server()
    _account, key = server.account()
    with server.client(key) as c:
        execution_id = start_execution(c, publish(c, flux_graph()))
        job = wait_until(lambda: fal_standin.submissions and fal_standin.submissions[0].polls > 0 and
                         fal_standin.submissions[0], what="the job to be polled")
        assert c.post(f"/api/v1/workflows/executions/{execution_id}/cancel").status_code == 202
        done = wait_status(c, execution_id, {"CANCELLED", "COMPLETED", "FAILED"})

    assert done["status"] == "CANCELLED"
    assert fal_standin.cancels == [job.request_id]
    assert fal_standin.jobs[job.request_id].cancelled


def test_outputs_are_ours_and_outlive_the_vendor(hosted_server):
    vendor = FalStandIn()
    with serve(vendor.app) as url:
        vendor.base_url = url
        server = hosted_server({"NODELOOM_FAL_URL": url, "FAL_KEY": vendor.key})
        _account, key = server.account()
        with server.client(key) as c:
            done = run_to_end(c, publish(c, flux_graph()))
    # the vendor is gone now; our copy is not
    assert done["status"] == "COMPLETED", done
    [job] = vendor.submissions
    link = done["outputs"]["image"]["url"]
    assert f"{job.request_id}" not in link and "/api/v1/files/" in link
    assert not link.startswith(url)
    answer = httpx.get(link if link.startswith("http") else server.url + link, timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert answer.content[:8] == PNG[:8]


def test_a_result_url_on_another_host_goes_through_the_address_guard(hosted_server, fal_standin):
    port = fal_standin.base_url.rsplit(":", 1)[1]
    fal_standin.behaviour.output = lambda base, job: {
        "images": [{"url": f"http://localhost:{port}/files/{job.request_id}.png", "content_type": "image/png"}]}
    server = hosted_server()
    _account, key = server.account()
    with server.client(key) as c:
        done = run_to_end(c, publish(c, flux_graph()))

    assert done["status"] == "FAILED"
    assert done["error"]["code"] == "fetch_failed"
    assert "localhost is a loopback name" in done["error"]["message"]


def test_a_video_model_writes_the_video_into_our_storage(hosted_server, fal_standin):
    fal_standin.behaviour.output = lambda base, job: {
        "video": {"url": f"{base}/files/{job.request_id}.mp4", "content_type": "video/mp4", "file_size": 68}}
    server = hosted_server(node_packs=with_packs("nodeloom.nodes.workflow_io"))
    _account, key = server.account(credits=1000)
    graph = {"nodes": [
        {"id": "prompt", "type": "input.text", "params": {"name": "prompt", "default": "waves at night"}},
        {"id": "kling", "type": "video.kling_text_to_video", "inputs": {"prompt": {"from": "prompt"}},
         "params": {"duration": 10, "aspectRatio": "9:16", "negativePrompt": "blur"}},
        {"id": "out", "type": "output.video", "inputs": {"video": {"from": "kling", "output": "video"}},
         "params": {"name": "clip"}},
    ]}
    with server.client(key) as c:
        done = run_to_end(c, publish(c, graph))
        assert done["status"] == "COMPLETED", done
        [job] = fal_standin.submissions
        assert job.endpoint == "fal-ai/kling-video/v2.5-turbo/pro/text-to-video"
        assert job.arguments == {"prompt": "waves at night", "negative_prompt": "blur", "aspect_ratio": "9:16",
                                 "duration": "10"}
        clip = done["outputs"]["clip"]
        # the stand-in's "video" is a PNG: the server stores the type it reads in the bytes, not the vendor's word
        assert clip["contentType"] == "image/png" and "/api/v1/files/" in clip["url"]
        answer = c.get(clip["url"])
        assert answer.status_code == 200 and answer.content == PNG  # the stand-in's bytes, now ours
