"""Every method of `Client` once, through the gateway of both topologies (the `stack`
fixture: all-in-one, then split), with the tiny model and the classical segmenter."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from easel.client import Client, Conflict, GenerationOutput, InvalidRequest, NotFound
from easel.core.events import Progress, Succeeded
from tests.segmentation.scenes import make_scene
from tests.support.images import encode
from tests.support.servers import Stack

QUICK = {"steps": 2, "seed": 7}
SCENE = make_scene(7, 128)


@pytest.fixture()
def client(stack: Stack) -> Client:
    with Client(stack.url, timeout=120) as easel:
        yield easel  # type: ignore[misc]


def test_generate_returns_images_seed_and_timings(client: Client) -> None:
    out = client.generate("a quiet lake", num_images=2, output_format="webp", **QUICK)
    assert out.seed == 7 and len(out.images) == 2
    assert out.image.size == (64, 64) and out.image.format == "WEBP"
    assert set(out.timings) >= {"queue_wait_ms", "inference_ms", "encode_ms", "total_ms"}
    with Image.open(io.BytesIO(out.image_bytes(1))) as second:
        assert second.format == "WEBP"
    assert out.raw["model"] == "tiny-random"


def test_inpaint_with_a_path_and_a_pil_mask(client: Client, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode(Image.new("RGB", (64, 64), "navy")))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    out = client.generate("a red door", image=photo, mask=mask, **QUICK)
    assert out.raw["mode"] == "inpaint" and out.image.size == (64, 64)
    saved = out.save(tmp_path / "out.png")
    with Image.open(saved) as written:
        assert written.size == (64, 64)


def test_stream_yields_the_servers_typed_events(client: Client) -> None:
    events = list(client.stream("a fox", **QUICK))
    assert [e.type for e in events][0] == "queued"
    assert [(e.step, e.total) for e in events if isinstance(e, Progress)] == [(1, 2), (2, 2)]
    last = events[-1]
    assert isinstance(last, Succeeded)
    assert GenerationOutput(last.result).image.size == (64, 64)


def test_a_refused_request_raises_with_the_field(client: Client) -> None:
    with pytest.raises(InvalidRequest) as caught:
        client.generate("x", steps=0)
    assert caught.value.status == 422 and caught.value.request_id
    assert "steps" in str(caught.value.details)
    with pytest.raises(InvalidRequest):
        list(client.stream("x", colour="red"))  # type: ignore[call-arg]


def test_a_job_from_submit_to_result(client: Client) -> None:
    seen: list[object] = []
    task_id = client.submit("a quiet lake", **QUICK)
    out = client.wait(task_id, timeout=300, on_progress=seen.append)
    assert out.task_id == task_id and out.seed == 7
    assert [(e.step, e.total) for e in seen if isinstance(e, Progress)] == [(1, 2), (2, 2)]
    assert client.status(task_id).status == "done"
    assert client.result(task_id).image_bytes() == out.image_bytes()
    events = list(client.events(task_id))
    assert events[0].type == "queued" and events[-1].type == "result"
    assert task_id in [job.task_id for job in client.jobs(limit=50).jobs]
    done = client.jobs(status="done").jobs
    assert done and all(job.status == "done" for job in done)


def test_a_cancelled_job(client: Client) -> None:
    task_id = client.submit("a long one", steps=150, width=512, height=512, seed=1)
    view = client.cancel(task_id)
    assert view.task_id == task_id and view.status in ("cancelled", "running")
    with pytest.raises(Conflict):
        client.result(task_id)
    with pytest.raises(NotFound) as caught:
        client.status("0" * 32)
    assert caught.value.code == "not_found"


def test_smart_mask_from_a_point(client: Client) -> None:
    out = client.smart_mask(SCENE.image, points=[SCENE.click], labels=[1])
    assert out.model == "grabcut" and out.mask.mode == "L" and out.mask.size == SCENE.size
    assert out.area > 0 and out.bbox is not None and 0 <= out.score <= 1
    boxed = client.smart_mask(encode(SCENE.image), box=tuple(SCENE.box()))  # type: ignore[arg-type]
    assert boxed.area > 0 and boxed.mask_bytes().startswith(b"\x89PNG")
    prepared = client.prepare(SCENE.image)
    assert (prepared.width, prepared.height) == SCENE.size and prepared.expires_in > 0
    by_id = client.smart_mask(prepared, points=[SCENE.click], labels=[1])
    assert by_id.raw["cached"] is True and by_id.mask_bytes() == out.mask_bytes()


def test_every_image_util(client: Client) -> None:
    image = SCENE.image
    assert client.resize(image, width=32, height=16, fit="stretch").size == (32, 16)
    assert client.crop(image, 4, 4, 20, 10).size == (20, 10)
    assert client.convert(image, "jpeg", quality=70).format == "JPEG"
    mask = client.smart_mask(image, points=[SCENE.click]).mask
    cut = client.extract_object(image, mask, crop=True)
    assert cut.mode == "RGBA" and cut.size[0] <= image.size[0]
    same = client.diff(image, image)
    assert same.mae == 0 and same.changed_fraction == 0 and same.heatmap.size == image.size
    assert client.canny(image, low_threshold=50).size == image.size
    grown = client.refine_mask(mask, dilate=3, output_format="png")
    assert grown.size == mask.size


def test_health_styles_workflows_models(client: Client) -> None:
    health = client.health()
    assert set(health["services"]) == {"generation", "segmentation", "image_utils", "job_manager"}
    assert client.health(deep=True)["status"] in ("healthy", "degraded")
    assert isinstance(client.styles(), list)
    assert client.workflows()["workflows"] == []
    try:
        models = client.models()
    except NotFound:  # a server from before the model catalogue
        return
    assert models["default_model"] in [model["name"] for model in models["models"]]
