"""`providers/comfyui.py` against a real ComfyUI (CPU nodes only, no weights) and, for what a real server cannot
be made to do (redirects, gateway errors), against httpx's MockTransport.

Each test uses its own prompt ids, client ids, file name prefixes and colours (ComfyUI caches node outputs across
prompts: an identical node would be reported cached, not run). Deadlines only keep a broken run from hanging.
"""

from __future__ import annotations

import asyncio
import io
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.support.comfyui import ComfyServer

from nodeloom.providers.comfyui import (
    Cached,
    ComfyClient,
    ComfyError,
    ComfyEvent,
    ComfyExecutionError,
    ComfyUnavailable,
    DeadlineExceeded,
    ExecutionStart,
    Failed,
    Interrupted,
    NodeExecuted,
    NodeStarted,
    OutputFile,
    OutputText,
    Progress,
    PromptLost,
    PromptRejected,
    SharedEvents,
    Succeeded,
    node_outputs,
    outputs,
)

live = pytest.mark.slow  # these start a real ComfyUI (the session's shared one, or their own)
HANG = 120.0  # seconds: only to turn a hang into a failure


def new_id() -> str:
    return str(uuid.uuid4())


def colour() -> int:
    return random.randrange(0x101010, 0xEFEFEF)


def chain(color: int, prefix: str, *, size: int = 64) -> dict[str, Any]:
    """EmptyImage → ImageBlur → ImageInvert → SaveImage."""
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.0}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": prefix}},
    }


def slow(color: int, *, blurs: int = 20, size: int = 768) -> dict[str, Any]:
    """A prompt that runs for a while on the CPU: many large blurs, each a node boundary where an interrupt lands."""
    prompt: dict[str, Any] = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": size, "height": size, "batch_size": 1, "color": color}}
    }
    last = "1"
    for i in range(blurs):
        node = str(10 + i)
        prompt[node] = {"class_type": "ImageBlur", "inputs": {"image": [last, 0], "blur_radius": 31, "sigma": 10.0}}
        last = node
    prompt["9"] = {"class_type": "PreviewImage", "inputs": {"images": [last, 0]}}
    return prompt


async def collect(events: AsyncIterator[ComfyEvent]) -> list[ComfyEvent]:
    async with asyncio.timeout(HANG):
        return [event async for event in events]


async def run(client: ComfyClient, prompt: dict[str, Any]) -> tuple[str, list[ComfyEvent]]:
    prompt_id = new_id()
    async with client.open_events(client_id=prompt_id) as events:
        await client.submit(prompt, prompt_id=prompt_id, client_id=prompt_id)
        return prompt_id, await collect(events.follow(prompt_id))


def rgb(color: int) -> tuple[int, int, int]:
    return (color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF


@pytest.fixture
async def client(comfy: ComfyServer) -> AsyncIterator[ComfyClient]:
    async with httpx.AsyncClient(trust_env=False) as http:
        yield ComfyClient(comfy.url, http=http, quiet_check=1.0)


# ── a run, its events and its output ──


@live
async def test_follow_sees_every_node_and_the_saved_image(client: ComfyClient) -> None:
    color, prefix = colour(), f"chain-{new_id()}"
    prompt_id, events = await run(client, chain(color, prefix))

    assert isinstance(events[0], ExecutionStart) and events[0].timestamp is not None
    assert all(event.prompt_id == prompt_id for event in events)
    assert [e.node for e in events if isinstance(e, NodeStarted)] == ["1", "2", "3", "4"]
    assert Cached(prompt_id=prompt_id, nodes=()) in events
    # only nodes with UI output report `executed`: here the SaveImage
    executed = [e for e in events if isinstance(e, NodeExecuted)]
    assert [e.node for e in executed] == ["4"]
    done = events[-1]
    assert isinstance(done, Succeeded)
    assert done.entry.status == "success" and done.entry.completed
    assert done.entry.started_at == events[0].timestamp
    assert done.entry.ended_at is not None and done.entry.ended_at >= events[0].timestamp
    done.entry.raise_for_status()
    assert not [e for e in events if isinstance(e, Progress)]  # none of these CPU nodes reports progress

    (file,) = outputs(done.entry)["4"]
    assert isinstance(file, OutputFile)
    assert (file.kind, file.type, file.subfolder) == ("image", "output", "")
    assert file.filename.startswith(prefix)
    assert node_outputs("4", executed[0].output) == [file]
    data, content_type = await client.view(file.filename, subfolder=file.subfolder, type=file.type)
    assert content_type == "image/png"
    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.size == (64, 64)
    inverted = tuple(255 - c for c in rgb(color))
    assert all(abs(a - b) <= 1 for a, b in zip(image.getpixel((32, 32)), inverted, strict=True))

    # the same prompt again: every node comes from ComfyUI's cache, none is started
    _, again = await run(client, chain(color, prefix))
    assert not [e for e in again if isinstance(e, NodeStarted)]
    assert set(next(e for e in again if isinstance(e, Cached)).nodes) == {"1", "2", "3", "4"}
    assert isinstance(again[-1], Succeeded)


@live
async def test_progress_events_skip_binary_preview_frames(client: ComfyClient, object_info: dict[str, Any]) -> None:
    # No core CPU node reports progress (only samplers, VAE tiling and upscalers, which need weights). ComfyUI's
    # example custom node SaveImageWebsocket does, one step per image, and sends each as a binary preview frame.
    if "SaveImageWebsocket" not in object_info:
        pytest.skip("no node that reports progress without weights (SaveImageWebsocket is not loaded)")
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 3, "color": colour()}},
        "2": {"class_type": "SaveImageWebsocket", "inputs": {"images": ["1", 0]}},
    }
    prompt_id, events = await run(client, prompt)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [(p.node, p.value, p.max) for p in progress] == [("2", 0, 3), ("2", 1, 3), ("2", 2, 3)]
    assert all(p.prompt_id == prompt_id for p in progress)
    assert isinstance(events[-1], Succeeded)


@live
async def test_a_failing_node_is_a_failed_event(client: ComfyClient) -> None:
    # a blur radius larger than the image: torch refuses the reflect padding inside the node
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": colour()}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": f"fail-{new_id()}"}},
    }
    prompt_id, events = await run(client, prompt)
    failed = events[-1]
    assert isinstance(failed, Failed)
    assert (failed.node_id, failed.node_type) == ("2", "ImageBlur")
    assert failed.exception_type and failed.exception_message and failed.traceback
    assert failed.entry.status == "error" and not failed.entry.completed
    with pytest.raises(ComfyExecutionError) as caught:
        failed.entry.raise_for_status()
    assert caught.value.event == failed
    # the socket told of the failure; ComfyUI files the prompt in its history a moment later (until then it is
    # still "running" in the queue)
    for _ in range(200):
        located = await client.locate(prompt_id)
        if located is None or located.state == "done":
            break
        await asyncio.sleep(0.02)
    assert located is not None and located.state == "done" and isinstance(located.entry.outcome, Failed)


@live
async def test_an_invalid_prompt_is_rejected_with_its_node_errors(client: ComfyClient) -> None:
    prompt = chain(colour(), f"bad-{new_id()}")
    prompt["2"]["inputs"]["blur_radius"] = 999  # max 31
    prompt_id = new_id()
    with pytest.raises(PromptRejected) as caught:
        await client.submit(prompt, prompt_id=prompt_id, client_id=prompt_id)
    rejected = caught.value
    assert rejected.status == 400 and rejected.error_type == "prompt_outputs_failed_validation"
    # the reason is only in node_errors: the top-level details list the output's own reasons, here none
    assert rejected.message == "Prompt outputs failed validation"
    assert set(rejected.node_errors) == {"2"}
    node = rejected.node_errors["2"]
    assert node.class_type == "ImageBlur" and node.dependent_outputs == ("4",)
    (error,) = node.errors
    assert (error.type, error.input_name) == ("value_bigger_than_max", "blur_radius")
    assert await client.locate(prompt_id) is None  # nothing was queued

    # an unknown node type names its node only in `details`
    with pytest.raises(PromptRejected) as caught:
        await client.submit({"7": {"class_type": "NoSuchNode", "inputs": {}}}, prompt_id=new_id(), client_id="x")
    assert caught.value.error_type == "invalid_prompt" and caught.value.node_id == "7"
    assert caught.value.node_errors == {}


@live
async def test_a_prompt_with_one_bad_output_still_runs_the_others(client: ComfyClient) -> None:
    prompt = chain(colour(), f"partial-{new_id()}")
    prompt["5"] = {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 999, "sigma": 1.0}}
    prompt["6"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "never"}}
    prompt_id = new_id()
    async with client.open_events(client_id=prompt_id) as events:
        submitted = await client.submit(prompt, prompt_id=prompt_id, client_id=prompt_id)
        assert submitted.prompt_id == prompt_id
        assert set(submitted.node_errors) == {"5"} and submitted.node_errors["5"].dependent_outputs == ("6",)
        seen = await collect(events.follow(prompt_id))
    assert isinstance(seen[-1], Succeeded)
    assert set(seen[-1].entry.outputs) == {"4"}


# ── one socket for many prompts ──


async def run_shared(client: ComfyClient, events: SharedEvents, prompt: dict[str, Any]) -> tuple[str, list[ComfyEvent]]:
    prompt_id = new_id()
    async with events.watch(prompt_id) as watch:
        await client.submit(prompt, prompt_id=prompt_id, client_id=events.client_id)
        return prompt_id, await collect(watch.follow())


@live
async def test_a_shared_socket_gives_each_prompt_its_own_events(client: ComfyClient) -> None:
    events = client.shared_events()
    try:
        prefixes = [f"shared-{new_id()}" for _ in range(3)]
        # three prompts in flight at once on one socket (one client id): each watcher hears its own prompt only
        runs = await asyncio.gather(*(run_shared(client, events, chain(colour(), prefix)) for prefix in prefixes))
        assert events.connected
        for (prompt_id, seen), prefix in zip(runs, prefixes, strict=True):
            assert all(event.prompt_id == prompt_id for event in seen)
            assert isinstance(seen[0], ExecutionStart)
            assert [e.node for e in seen if isinstance(e, NodeStarted)] == ["1", "2", "3", "4"]
            done = seen[-1]
            assert isinstance(done, Succeeded)
            (file,) = outputs(done.entry)["4"]
            assert isinstance(file, OutputFile) and file.filename.startswith(prefix)
            # the entry the socket told is the history's own: status, outputs, start and end (told at the terminal
            # frame, which ComfyUI sends just before it writes the history: waited for here)
            history = await client.wait_done(prompt_id, poll_interval=0.05, deadline=time.monotonic() + HANG)
            assert (done.entry.status, done.entry.completed, done.entry.outputs) == (
                history.status, history.completed, history.outputs)
            assert (done.entry.started_at, done.entry.ended_at) == (history.started_at, history.ended_at)
            assert done.entry.outcome == history.outcome
        # the socket stays open for the next prompt
        _, again = await run_shared(client, events, chain(colour(), prefixes[0]))
        assert isinstance(again[-1], Succeeded)
    finally:
        await events.aclose()
    assert not events.connected


@live
async def test_a_failure_told_on_a_shared_socket_is_the_historys(client: ComfyClient) -> None:
    events = client.shared_events()
    try:
        prompt = {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": colour()}},
            "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 31, "sigma": 1.0}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": f"fail-{new_id()}"}},
        }
        prompt_id, seen = await run_shared(client, events, prompt)
    finally:
        await events.aclose()
    failed = seen[-1]
    assert isinstance(failed, Failed) and (failed.node_id, failed.node_type) == ("2", "ImageBlur")
    assert failed.traceback and not failed.entry.completed
    history = await client.wait_done(prompt_id, poll_interval=0.05, deadline=time.monotonic() + HANG)
    assert history.outcome == failed.entry.outcome


@live
async def test_reattaching_through_the_shared_socket_or_without_taking_anothers(client: ComfyClient) -> None:
    ours = client.shared_events()
    try:
        # posted with our socket's client id, then followed again (as after a restart of the follower)
        prompt_id = new_id()
        await ours.connect()
        await client.submit(chain(colour(), f"again-{new_id()}"), prompt_id=prompt_id, client_id=ours.client_id)
        async with aclosing(ours.reattach(prompt_id)) as again:
            seen = await collect(again)
        assert isinstance(seen[-1], Succeeded) and any(isinstance(e, ExecutionStart) for e in seen)
        assert set(seen[-1].entry.outputs) == {"4"}

        # posted by another process, whose socket is alive: re-attaching looks the prompt up and leaves that socket
        # hearing its events
        theirs = new_id()
        async with client.open_events(client_id=theirs) as their_socket:
            prompt_id = new_id()
            await client.submit(chain(colour(), f"theirs-{new_id()}"), prompt_id=prompt_id, client_id=theirs)
            async with aclosing(client.await_events(prompt_id, poll_interval=0.05)) as looked_up:
                seen = await collect(looked_up)
            assert [type(e) for e in seen] == [ExecutionStart, NodeExecuted, Succeeded]
            heard = await collect(their_socket.follow(prompt_id))
        assert [e.node for e in heard if isinstance(e, NodeStarted)] == ["1", "2", "3", "4"]
        assert isinstance(heard[-1], Succeeded)
        with pytest.raises(PromptLost):
            async with aclosing(ours.reattach(new_id())) as unknown:
                await collect(unknown)
    finally:
        await ours.aclose()


# ── where a prompt is, taking it back ──


@live
async def test_locate_running_pending_done_unknown_then_interrupt_and_delete(client: ComfyClient) -> None:
    running_id, pending_id, also_pending_id = new_id(), new_id(), new_id()
    # submitted with no socket open, as after a crash: `follow` re-attaches below
    await client.submit(slow(colour()), prompt_id=running_id, client_id=running_id)
    await client.submit(slow(colour()), prompt_id=pending_id, client_id=pending_id)
    await client.submit(slow(colour()), prompt_id=also_pending_id, client_id=also_pending_id)

    async with asyncio.timeout(HANG):
        while (located := await client.locate(running_id)) is None or located.state != "running":
            assert located is not None and located.state == "pending", located  # someone else's prompt runs first
            await asyncio.sleep(0.1)
    assert await client.locate(pending_id) == await client.locate(also_pending_id)
    assert (await client.locate(pending_id)).state == "pending"
    running, pending = await client.queue()
    assert running == (running_id,) and pending[-2:] == (pending_id, also_pending_id)
    assert await client.locate(new_id()) is None
    assert await client.history(running_id) is None

    # take the pending ones off first, so that neither starts when the running one stops
    await client.delete_queued([pending_id])
    assert await client.locate(pending_id) is None
    assert await client.cancel(also_pending_id) is None
    assert await client.locate(also_pending_id) is None

    async with aclosing(client.follow(running_id, client_id=running_id)) as events:
        seen: list[ComfyEvent] = []
        async with asyncio.timeout(HANG):
            async for event in events:
                seen.append(event)
                if isinstance(event, NodeStarted):  # after the node started, an interrupt cannot be lost
                    await client.interrupt(running_id)
    interrupted = seen[-1]
    assert isinstance(interrupted, Interrupted)
    assert interrupted.node_type == "ImageBlur" and interrupted.node_id is not None
    # the socket opened after the start: the start comes from the history, just before the end
    (start,) = [e for e in seen if isinstance(e, ExecutionStart)]
    assert start.timestamp is not None and start.timestamp == interrupted.entry.started_at
    assert interrupted.entry.status == "error"
    with pytest.raises(ComfyExecutionError):
        interrupted.entry.raise_for_status()
    located = await client.locate(running_id)
    assert located is not None and located.state == "done" and isinstance(located.entry.outcome, Interrupted)
    with pytest.raises(PromptLost):
        await client.wait_done(pending_id, deadline=time.monotonic() + HANG)


@live
async def test_wait_done_without_a_socket_and_follow_after_the_end(client: ComfyClient, comfy: ComfyServer) -> None:
    prompt_id, prefix = new_id(), f"nosocket-{new_id()}"
    await client.submit(chain(colour(), prefix), prompt_id=prompt_id, client_id=new_id())
    entry = await client.wait_done(prompt_id, poll_interval=0.1)
    assert entry.status == "success" and entry.prompt_id == prompt_id
    (file,) = outputs(entry)["4"]
    assert isinstance(file, OutputFile) and (comfy.output_dir / file.filename).is_file()

    # re-attaching to a prompt that is already done: the history supplies the start, the outputs and the end
    async with aclosing(client.follow(prompt_id, client_id=new_id())) as events:
        seen = await collect(events)
    assert [type(e) for e in seen] == [ExecutionStart, NodeExecuted, Succeeded]
    assert seen[0].timestamp == entry.started_at
    assert seen[1].output == entry.outputs["4"]

    with pytest.raises(PromptLost):
        await client.wait_done(new_id())


@live
async def test_a_silenced_socket_falls_back_to_the_history(client: ComfyClient) -> None:
    # a second socket with the same client id takes the events: the first one hears nothing, and `follow` on it
    # finds the prompt done through `locate` once the socket has been quiet a while
    client_id, prompt_id = new_id(), new_id()
    async with client.open_events(client_id=client_id) as silenced, client.open_events(client_id=client_id):
        await client.submit(chain(colour(), f"silenced-{new_id()}"), prompt_id=prompt_id, client_id=client_id)
        seen = await collect(silenced.follow(prompt_id))
    assert [type(e) for e in seen] == [ExecutionStart, NodeExecuted, Succeeded]


@live
async def test_a_deadline_leaves_the_prompt_running(client: ComfyClient) -> None:
    prompt_id = new_id()
    async with client.open_events(client_id=prompt_id) as events:
        await client.submit(slow(colour(), blurs=3), prompt_id=prompt_id, client_id=prompt_id)
        with pytest.raises(DeadlineExceeded):
            async for _ in events.follow(prompt_id, deadline=time.monotonic() + 0.2):
                pass
    located = await client.locate(prompt_id)
    assert located is not None and located.state in ("pending", "running")
    entry = await client.cancel(prompt_id, deadline=time.monotonic() + HANG)
    assert entry is not None and isinstance(entry.outcome, Interrupted)
    located = await client.locate(prompt_id)
    assert located is not None and located.state == "done"


# ── output kinds ──


@live
async def test_a_batch_gives_one_file_per_image(client: ComfyClient) -> None:
    prefix = f"batch-{new_id()}"
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 3, "color": colour()}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }
    _, events = await run(client, prompt)
    done = events[-1]
    assert isinstance(done, Succeeded)
    files = outputs(done.entry)["2"]
    assert len(files) == 3 and len({f.filename for f in files if isinstance(f, OutputFile)}) == 3
    for file in files:
        assert isinstance(file, OutputFile) and file.kind == "image"
        data, _ = await client.view(file.filename, subfolder=file.subfolder, type=file.type)
        assert Image.open(io.BytesIO(data)).size == (16, 16)


@live
async def test_animated_webp_video_and_text_outputs(client: ComfyClient, object_info: dict[str, Any]) -> None:
    # three different frames (an animated WEBP merges identical consecutive frames into one)
    prompt: dict[str, Any] = {
        "11": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": colour()}},
        "12": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0x000000}},
        "13": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0xFFFFFF}},
        "14": {"class_type": "ImageBatch", "inputs": {"image1": ["11", 0], "image2": ["12", 0]}},
        "1": {"class_type": "ImageBatch", "inputs": {"image1": ["14", 0], "image2": ["13", 0]}},
        "2": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {
                "images": ["1", 0],
                "filename_prefix": f"anim-{new_id()}",
                "fps": 4.0,
                "lossless": True,
                "quality": 80,
                "method": "default",
            },
        },
        "3": {"class_type": "PrimitiveString", "inputs": {"value": f"hello {new_id()}"}},
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["3", 0]}},
    }
    video = "CreateVideo" in object_info and "SaveVideo" in object_info
    if video:
        prompt["5"] = {"class_type": "CreateVideo", "inputs": {"images": ["1", 0], "fps": 8.0}}
        prompt["6"] = {
            "class_type": "SaveVideo",
            "inputs": {"video": ["5", 0], "filename_prefix": f"video/v-{new_id()}", "format": "auto", "codec": "auto"},
        }
    _, events = await run(client, prompt)
    done = events[-1]
    assert isinstance(done, Succeeded), done
    found = outputs(done.entry)

    (animated,) = found["2"]
    assert isinstance(animated, OutputFile) and animated.kind == "animated" and animated.filename.endswith(".webp")
    data, content_type = await client.view(animated.filename, subfolder=animated.subfolder, type=animated.type)
    assert content_type == "image/webp"
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3

    assert found["4"] == [OutputText(node="4", text=prompt["3"]["inputs"]["value"])]

    if video:
        (clip,) = found["6"]
        assert isinstance(clip, OutputFile) and clip.kind == "video" and clip.subfolder == "video"
        data, content_type = await client.view(clip.filename, subfolder=clip.subfolder, type=clip.type)
        assert content_type == "video/mp4" and data[4:8] == b"ftyp"


@live
async def test_upload_an_image_and_load_it(client: ComfyClient) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buffer, format="PNG")
    name = f"up-{new_id()}.png"
    stored = await client.upload_image(buffer.getvalue(), name, subfolder="nl")
    assert stored == name
    assert (await client.view(name, subfolder="nl", type="input")).data == buffer.getvalue()
    # the same name again: same bytes → the same file, other bytes → a new name unless overwriting
    assert await client.upload_image(buffer.getvalue(), name, subfolder="nl") == name
    other = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 0)).save(other, format="PNG")
    assert await client.upload_image(other.getvalue(), name, subfolder="nl") != name
    assert await client.upload_image(other.getvalue(), name, subfolder="nl", overwrite=True) == name

    buffer_bytes = await client.view(name, subfolder="nl", type="input")
    assert buffer_bytes.data == other.getvalue()
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": f"nl/{name}"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": f"load-{new_id()}"}},
    }
    _, events = await run(client, prompt)
    done = events[-1]
    assert isinstance(done, Succeeded), done
    (file,) = outputs(done.entry)["3"]
    assert isinstance(file, OutputFile)
    data, _ = await client.view(file.filename, subfolder=file.subfolder, type=file.type)
    assert Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)) == (255, 255, 255)


# ── a dead server ──


@live
async def test_a_killed_server_is_unavailable(make_comfy: Callable[..., ComfyServer]) -> None:
    server = make_comfy()
    async with httpx.AsyncClient(trust_env=False) as http:
        client = ComfyClient(server.url, http=http, timeout=5.0, quiet_check=1.0)
        assert "system" in await client.system_stats()
        prompt_id = new_id()
        async with client.open_events(client_id=prompt_id) as events:
            await client.submit(slow(colour()), prompt_id=prompt_id, client_id=prompt_id)
            with pytest.raises(ComfyUnavailable):
                async with asyncio.timeout(HANG):
                    async for event in events.follow(prompt_id):
                        if isinstance(event, NodeStarted):
                            server.kill()
        with pytest.raises(ComfyUnavailable):
            await client.system_stats()
        with pytest.raises(ComfyUnavailable):
            await client.locate(prompt_id)
        with pytest.raises(ComfyUnavailable):
            await client.submit(slow(colour()), prompt_id=new_id(), client_id="x")
        with pytest.raises(ComfyUnavailable):
            async with client.open_events(client_id="x"):
                pass


@live
async def test_a_shared_socket_turns_to_the_history_when_its_server_dies_and_reopens_after(
        make_comfy: Callable[..., ComfyServer]) -> None:
    server = make_comfy()
    async with httpx.AsyncClient(trust_env=False) as http:
        client = ComfyClient(server.url, http=http, timeout=5.0, quiet_check=1.0)
        events = client.shared_events()
        try:
            prompt_id = new_id()
            async with events.watch(prompt_id) as watch:
                await client.submit(slow(colour()), prompt_id=prompt_id, client_id=events.client_id)
                with pytest.raises(ComfyUnavailable):
                    async with asyncio.timeout(HANG):
                        async for event in watch.follow():
                            if isinstance(event, NodeStarted):
                                server.kill()
            assert not events.connected
            with pytest.raises(ComfyUnavailable):
                async with events.watch(new_id()):
                    pass
            server.restart()
            client_id = events.client_id
            _, seen = await run_shared(client, events, chain(colour(), f"reopened-{new_id()}"))
            assert isinstance(seen[-1], Succeeded)
            assert events.connected and events.client_id == client_id
        finally:
            await events.aclose()


# ── what a real server cannot be made to do ──


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> tuple[ComfyClient, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ComfyClient("http://comfy.internal:8188", http=http), http


async def test_redirects_are_not_followed() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(302, headers={"location": "http://elsewhere.example/system_stats"})

    client, http = mock_client(handler)
    async with http:
        with pytest.raises(ComfyError) as caught:
            await client.system_stats()
    assert caught.value.status == 302 and not isinstance(caught.value, ComfyUnavailable)
    assert asked == ["http://comfy.internal:8188/system_stats"]


async def test_gateway_errors_and_refused_connections_mean_unavailable() -> None:
    client, http = mock_client(lambda request: httpx.Response(503, text="no upstream"))
    async with http:
        with pytest.raises(ComfyUnavailable):
            await client.queue()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, http = mock_client(refuse)
    async with http:
        with pytest.raises(ComfyUnavailable):
            await client.object_info()


async def test_prompt_ids_are_lowercase_uuids() -> None:
    client, http = mock_client(lambda request: pytest.fail("nothing should be sent"))
    async with http:
        for bad in ("abc", str(uuid.uuid4()).upper(), uuid.uuid4().hex):
            with pytest.raises(ValueError):
                await client.submit({}, prompt_id=bad, client_id="c")
            with pytest.raises(ValueError):
                await client.locate(bad)


def test_output_kinds_of_other_savers() -> None:
    assert node_outputs(
        "9",
        {
            "images": [{"filename": "v_00001_.mp4", "subfolder": "video", "type": "output"}],  # SaveVideo
            "animated": [True],
        },
    ) == [OutputFile(node="9", kind="video", filename="v_00001_.mp4", subfolder="video", type="output")]
    assert [
        o.kind for o in node_outputs("9", {"audio": [{"filename": "a.flac", "subfolder": "", "type": "output"}]})
    ] == ["audio"]
    assert [o.kind for o in node_outputs("9", {"3d": [{"filename": "m.glb", "subfolder": "", "type": "output"}]})] == [
        "3d"
    ]
    gifs = node_outputs(
        "9",
        {
            "gifs": [
                {"filename": "a.mp4", "subfolder": "", "type": "output", "format": "video/h264-mp4"},
                {"filename": "b.gif", "subfolder": "", "type": "output", "format": "image/gif"},
            ]
        },
    )
    assert [(o.kind, getattr(o, "format", None)) for o in gifs] == [
        ("video", "video/h264-mp4"),
        ("animated", "image/gif"),
    ]
    assert node_outputs("9", {"text": ["a", "b"], "images": []}) == [
        OutputText(node="9", text="a"),
        OutputText(node="9", text="b"),
    ]
