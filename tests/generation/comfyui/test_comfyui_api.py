"""The ComfyUI engine end to end: the all-in-one server, its engine talking to a fake
ComfyUI that follows the protocol a real 0.33 server speaks."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
from PIL import Image

from easel.generation.engines.comfyui.workflows import (
    DEFAULT_MODEL_FILES,
    EXAMPLES,
    WorkflowCatalogue,
)
from tests.generation.comfyui.conftest import generation_detail
from tests.generation.helpers import generate, image_of, sse_events
from tests.jobs.helpers import submit, wait_for
from tests.support.fake_comfyui import FakeComfyUI

QUICK = {"prompt": "a red fox", "steps": 3, "seed": 11, "width": 64, "height": 64}


def b64_png(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def last_graph(fake: FakeComfyUI) -> dict[str, Any]:
    return dict(fake.prompts[-1]["prompt"])


def test_workflows_are_listed_with_their_parameters(api: httpx.Client) -> None:
    body = api.get("/api/workflows").json()
    assert body["engine"] == "comfyui"
    by_name = {w["name"]: w for w in body["workflows"]}
    assert {"text-to-image", "image-to-image", "inpaint", "invert", "missing-node"} <= set(by_name)
    steps = by_name["text-to-image"]["parameters"]["steps"]
    assert steps == {"type": "int", "description": "", "default": 20, "min": 1, "max": 150,
                     "required": False, "targets": [{"node": "3", "input": "steps"}]}  # fmt: skip
    assert by_name["invert"]["source"] == "workflows_path"
    assert body["mode_workflows"]["edit"] == "image-to-image"
    models = {m["name"]: m for m in api.get("/api/models").json()["models"]}
    assert set(models) == set(by_name)  # with ComfyUI, a request's `model` is a workflow
    assert models["image-to-image"]["modes"] == ["edit"]
    assert models["invert"] == {"name": "invert", "family": "comfyui",
                                "description": by_name["invert"]["description"],
                                "modes": [], "loaded": False, "default": False}  # fmt: skip


def test_request_fields_and_extra_params_reach_their_node_inputs(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    result = generate(
        api, prompt="a red fox", negative_prompt="blurry", width=96, height=80, steps=4,
        guidance_scale=5.5, seed=42, extra_params={"sampler_name": "heun", "scheduler": "karras"},
    )  # fmt: skip
    graph = last_graph(fake)
    assert graph["6"]["inputs"]["text"] == "a red fox"
    assert graph["7"]["inputs"]["text"] == "blurry"
    assert (graph["5"]["inputs"]["width"], graph["5"]["inputs"]["height"]) == (96, 80)
    sampler = graph["3"]["inputs"]
    assert (sampler["seed"], sampler["steps"], sampler["cfg"]) == (42, 4, 5.5)
    assert (sampler["sampler_name"], sampler["scheduler"]) == ("heun", "karras")
    assert graph["4"]["inputs"]["ckpt_name"] == "v1-5-pruned-emaonly.safetensors"
    assert "easel" not in graph  # the declaration is not sent
    # Posted with the engine's own websocket id, so the events come to it.
    assert fake.prompts[-1]["client_id"] == generation_detail(api)["client_id"]
    assert (result["model"], result["width"], result["height"]) == ("text-to-image", 96, 80)
    assert image_of(result).size == (96, 80)


def test_seeds_make_images_reproducible_one_prompt_per_image(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    first = generate(api, **QUICK, num_images=2)
    assert [fake.prompts[i]["prompt"]["3"]["inputs"]["seed"] for i in (-2, -1)] == [11, 12]
    assert [image["seed"] for image in first["images"]] == [11, 12]
    again = generate(api, **QUICK)
    assert again["images"][0]["image"] == first["images"][0]["image"]
    assert first["images"][1]["image"] != first["images"][0]["image"]
    # The second image alone, by its seed, is the same image.
    second = generate(api, **{**QUICK, "seed": 12})
    assert second["images"][0]["image"] == first["images"][1]["image"]


def test_images_are_uploaded_under_unique_names(api: httpx.Client, fake: FakeComfyUI) -> None:
    photo = b64_png(Image.new("RGB", (64, 48), (10, 200, 30)))
    mask = Image.new("L", (64, 48), 0)
    mask.paste(255, (0, 0, 32, 48))
    before = len(fake.uploads)
    edited = generate(api, prompt="greener", input_image=photo, steps=2, seed=1,
                      extra_params={"strength": 0.5})  # fmt: skip
    graph = last_graph(fake)
    assert graph["10"]["inputs"]["image"] == fake.uploads[-1]
    assert graph["3"]["inputs"]["denoise"] == 0.5 and edited["model"] == "image-to-image"
    inpainted = generate(api, prompt="a door", input_image=photo, mask_image=b64_png(mask),
                         steps=2, seed=1)  # fmt: skip
    graph = last_graph(fake)
    image_ref, mask_ref = graph["10"]["inputs"]["image"], graph["11"]["inputs"]["image"]
    assert {image_ref, mask_ref} == set(fake.uploads[-2:])
    assert len(set(fake.uploads[before:])) == 3 and image_ref.startswith("easel/")
    assert graph["4"]["inputs"]["ckpt_name"] == "512-inpainting-ema.safetensors"
    # White = repaint: the right half kept the photo.
    out = image_of(inpainted).convert("RGB")
    assert out.getpixel((60, 10)) == (10, 200, 30) and out.getpixel((5, 10)) != (10, 200, 30)


def test_invalid_params_are_422_before_anything_is_sent(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    posted = len(fake.prompts)
    cases = [
        ({**QUICK, "extra_params": {"cfg_rescale": 1}}, "extra_params.cfg_rescale"),
        ({**QUICK, "guidance_scale": 31}, "guidance_scale"),
        ({**QUICK, "extra_params": {"sampler_name": "magic"}}, "extra_params.sampler_name"),
        ({**QUICK, "extra_params": {"seed": 3}}, "extra_params.seed"),
        ({**QUICK, "model": "../../etc/passwd"}, "model"),
        ({**QUICK, "model": "no-such-flow"}, "model"),
        ({"prompt": "x", "model": "invert", "extra_params": {"color": -1}}, "extra_params.color"),
    ]
    for body, field in cases:
        answer = api.post("/api/generate", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == field, answer.text
    assert len(fake.prompts) == posted


def test_comfyui_validation_errors_are_422_naming_node_and_input(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    answer = api.post("/api/generate", json={**QUICK, "extra_params": {"checkpoint": "nope.ckpt"}})
    assert answer.status_code == 422, answer.text
    (detail,) = answer.json()["error"]["details"]
    assert detail["field"] == "extra_params.checkpoint"
    assert (detail["node"], detail["input"], detail["type"]) == (
        "4",
        "ckpt_name",
        "value_not_in_list",
    )
    assert "node 4 (CheckpointLoaderSimple) input 'ckpt_name'" in detail["message"]
    assert "'nope.ckpt' not in" in detail["message"]
    # A node class the server lacks: named from the error's extra_info.
    answer = api.post("/api/generate", json={"prompt": "x", "model": "missing-node"})
    assert answer.status_code == 422, answer.text
    (detail,) = answer.json()["error"]["details"]
    assert detail["field"] == "workflow.1" and "NoSuchNode" in detail["message"]


def test_execution_error_fails_with_comfyui_message(api: httpx.Client, fake: FakeComfyUI) -> None:
    fake.fail_classes["KSampler"] = "CUDA out of memory"
    answer = api.post("/api/generate", json=QUICK)
    assert answer.status_code == 502, answer.text  # the gateway's word for a failed service
    message = answer.json()["error"]["message"]
    assert "ComfyUI failed running node 3 (KSampler): CUDA out of memory" in message
    # The stream carries the service's own error; a job ends failed with the message.
    with api.stream("POST", "/api/generate/stream", json=QUICK) as response:
        name, data = list(sse_events(response))[-1]
    assert name == "error" and data["status"] == 502
    assert data["error"]["code"] == "workflow_failed"
    assert data["error"]["details"]["exception_type"] == "RuntimeError"
    view = wait_for(api, submit(api, QUICK), "failed", "done")
    assert "CUDA out of memory" in view["error"]["message"], view
    fake.fail_classes.clear()
    assert generate(api, **QUICK)["images"]


def test_standard_fields_a_workflow_lacks_are_ignored_with_a_warning(api: httpx.Client) -> None:
    result = generate(api, prompt="ignored", model="invert", extra_params={"color": 0xFF0000})
    assert result["warnings"] == ["workflow 'invert' ignores prompt"]
    assert image_of(result).convert("RGB").getpixel((0, 0)) == (0, 255, 255)


def test_progress_reaches_the_jobs_events(api: httpx.Client) -> None:
    task_id = submit(api, {**QUICK, "steps": 6})
    with api.stream("GET", f"/api/generate/events/{task_id}") as response:
        events = list(sse_events(response))
    names = [name for name, _ in events]
    assert names[-1] == "result", events
    progress = [(data["step"], data["total"]) for name, data in events if name == "progress"]
    assert progress[0] == (1, 6) and progress[-1] == (6, 6)  # first and final are always sent
    assert wait_for(api, task_id, "done")["progress"] == {"step": 6, "total": 6}


def test_websocket_dropped_mid_job_completion_found_in_history(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    fake.hold(step=2)
    task_id = submit(api, {**QUICK, "seed": 5})
    fake.wait_held()
    fake.refuse_ws = True  # and it stays away: only /history can tell the end
    fake.drop_sockets()
    fake.wait_for(lambda: not generation_detail(api)["comfyui_available"], "the drop noticed")
    fake.release()
    view = wait_for(api, task_id, "done", "failed")
    assert view["status"] == "done", view
    assert generation_detail(api)["comfyui_available"] is False
    result = api.get(f"/api/generate/result/{task_id}").json()
    assert result["images"][0]["seed"] == 5
    fake.refuse_ws = False
    fake.wait_for(lambda: generation_detail(api)["comfyui_available"], "the reconnect")


def test_comfyui_restarted_mid_job_the_job_is_retried(api: httpx.Client, fake: FakeComfyUI) -> None:
    fake.hold(step=2)
    task_id = submit(api, {**QUICK, "seed": 9})
    held = fake.wait_held()
    fake.restart()  # the prompt is lost with the server's queue
    view = wait_for(api, task_id, "done", "failed")
    assert view["status"] == "done", view
    # Run again: on the same attempt when generation's health still said ComfyUI was away
    # (an outage, waited out), else on a second one (tests/jobs/test_outage.py).
    assert view["attempts"] in (1, 2)
    assert fake.prompts[-1]["prompt_id"] != held.prompt_id
    assert fake.entry(fake.prompts[-1]["prompt_id"])["status"]["status_str"] == "success"


def test_comfyui_down_is_degraded_and_503_then_reconnects(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    fake.stop()
    try:
        fake.wait_for(lambda: not generation_detail(api)["comfyui_available"], "degraded")
        health = api.get("/api/system/health").json()["services"]["generation"]
        assert health["status"] == "degraded"
        assert "unreachable" in health["detail"]["last_error"]
        assert api.get("/health").json()["status"] == "degraded"  # the gateway's compat view
        answer = api.post("/api/generate", json=QUICK)
        assert answer.status_code == 503, answer.text
        assert "ComfyUI at http://127.0.0.1" in answer.json()["error"]["message"]
    finally:
        fake.start()
    fake.wait_for(lambda: generation_detail(api)["comfyui_available"], "reconnected")
    detail = generation_detail(api)
    assert detail["comfyui_version"] == "0.33.0" and detail["devices"][0]["type"] == "cpu"
    assert generate(api, **QUICK)["images"]


def theirs(prompt: str) -> dict[str, Any]:
    """A graph as another ComfyUI client would post it."""
    catalogue = WorkflowCatalogue.load([EXAMPLES], DEFAULT_MODEL_FILES)
    values = {"prompt": prompt, "steps": 4, "width": 64, "height": 64}
    return catalogue.workflows["text-to-image"].inject(values)


def test_cancel_deletes_our_pending_prompt_not_anothers_running_one(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    interrupts = len(fake.interrupts)
    fake.hold(step=2)
    other = fake.queue_direct(theirs("not easel's"), client_id="someone-else")
    fake.wait_held()
    task_id = submit(api, QUICK)
    fake.wait_for(lambda: len(fake.pending_ids()) == 1, "easel's prompt queued behind")
    (ours,) = fake.pending_ids()
    assert api.post(f"/api/generate/cancel/{task_id}").status_code == 200
    wait_for(api, task_id, "cancelled")
    fake.wait_for(lambda: [ours] in fake.deletes, "the queue delete")
    assert all(body.get("prompt_id") == ours for body in fake.interrupts[interrupts:])
    fake.release()
    fake.wait_for(lambda: other in fake.history, "the other client's prompt to end")
    assert fake.history[other]["status"]["status_str"] == "success"


def test_cancel_interrupts_our_running_prompt_not_anothers_pending_one(
    api: httpx.Client, fake: FakeComfyUI
) -> None:
    deletes = len(fake.deletes)
    fake.hold(step=2)
    task_id = submit(api, QUICK)
    ours = fake.wait_held()
    other = fake.queue_direct(theirs("not easel's"), client_id="someone-else")
    assert api.post(f"/api/generate/cancel/{task_id}").status_code == 200
    wait_for(api, task_id, "cancelled")
    fake.wait_for(lambda: {"prompt_id": ours.prompt_id} in fake.interrupts, "the interrupt")
    assert fake.deletes[deletes:] == []
    fake.release()
    fake.wait_for(lambda: other in fake.history, "the other client's prompt to end")
    assert fake.history[other]["status"]["status_str"] == "success"
    assert fake.history[ours.prompt_id]["status"]["messages"][-1][0] == "execution_interrupted"


def test_closing_the_stream_interrupts_its_prompt(api: httpx.Client, fake: FakeComfyUI) -> None:
    fake.hold(step=2)
    with api.stream("POST", "/api/generate/stream", json=QUICK) as response:
        for name, _ in sse_events(response):
            if name == "progress":
                break  # leaving the block closes the connection
    ours = fake.prompts[-1]["prompt_id"]
    fake.wait_for(lambda: {"prompt_id": ours} in fake.interrupts, "the targeted interrupt")
    fake.wait_for(lambda: ours in fake.history, "the prompt to end")
    assert fake.history[ours]["status"]["messages"][-1][0] == "execution_interrupted"


def test_gateway_compat_health_and_generate(api: httpx.Client, fake: FakeComfyUI) -> None:
    health = api.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "healthy", "gpu_available": False,
                             "version": health.json()["version"]}  # fmt: skip
    queued = api.post("/generate", json={"mode": "text-to-image", "prompt": "a green hill"})
    assert queued.status_code == 200, queued.text
    body = queued.json()
    assert body["status"] == "queued" and body["image"] is None and body["error"] is None
    assert wait_for(api, body["task_id"], "done", "failed")["status"] == "done"
    assert last_graph(fake)["6"]["inputs"]["text"] == "a green hill"
