"""The pod plan: which processes, in which order, on which ports, with which environment."""

from __future__ import annotations

import sys

import pytest

from easel.compose.services import SERVICES
from easel.compose.settings import EaselSettings
from easel.pod.plan import PlanError, PodProcess, build_plan, process_name

pytestmark = pytest.mark.usefixtures("clean_env")


def names(plan: list[PodProcess]) -> list[str]:
    return [process.name for process in plan]


def by_name(plan: list[PodProcess]) -> dict[str, PodProcess]:
    return {process.name: process for process in plan}


def test_comfyui_first_then_services_by_need_then_workers_then_gateway() -> None:
    plan = build_plan(
        EaselSettings.load(comfyui_command="python main.py --port 8188", pod_workers=2)
    )
    order = names(plan)
    assert order[0] == "comfyui"
    assert order[-3:] == ["worker-1", "worker-2", "gateway"]
    # Every registered service, read from the registry (a new service joins by itself).
    assert sorted(order[1:-3]) == sorted(spec.cli_name for spec in SERVICES)
    for spec in SERVICES:
        for need in spec.needs:
            needed = next(s for s in SERVICES if s.name == need)
            assert order.index(needed.cli_name) < order.index(spec.cli_name)
    assert order.index("generation") < order.index("job-manager")


def test_without_a_comfyui_command_comfyui_is_not_managed() -> None:
    plan = build_plan(EaselSettings.load())
    assert "comfyui" not in names(plan)
    assert not any(name.startswith("worker") for name in names(plan))


def test_comfyui_command_port_and_health_come_from_its_settings() -> None:
    settings = EaselSettings.load(
        comfyui_command="'/opt/Comfy UI/venv/bin/python' main.py --listen",
        comfyui_api_url="http://127.0.0.1:8288/",
    )
    comfyui = by_name(build_plan(settings))["comfyui"]
    assert comfyui.argv == ("/opt/Comfy UI/venv/bin/python", "main.py", "--listen")
    assert comfyui.port == 8288
    assert comfyui.health_url == "http://127.0.0.1:8288/system_stats"


def test_default_ports_are_the_first_versions_and_the_registrys() -> None:
    plan = by_name(build_plan(EaselSettings.load()))
    assert plan["gateway"].port == 8000
    assert plan["generation"].port == 8001
    for spec in SERVICES:
        if spec.name != "generation":
            assert plan[spec.cli_name].port == spec.default_port


def test_ports_from_settings() -> None:
    settings = EaselSettings.load(
        port=9000, generation_port=9001, pod_ports={"image-utils": 9003, "job_manager": 9004}
    )
    plan = by_name(build_plan(settings))
    assert [plan[n].port for n in ("gateway", "generation", "image-utils", "job-manager")] == [
        9000,
        9001,
        9003,
        9004,
    ]
    assert plan["job-manager"].argv[-2:] == ("--port", "9004")
    assert plan["job-manager"].health_url == "http://127.0.0.1:9004/api/health"


def test_each_service_runs_easel_serve_and_the_gateway_knows_every_url() -> None:
    plan = by_name(build_plan(EaselSettings.load(), python="/py"))
    gateway = plan["gateway"]
    assert gateway.argv == (
        "/py",
        "-m",
        "easel",
        "serve",
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        "8000",
    )
    for spec in SERVICES:
        process = plan[spec.cli_name]
        assert process.argv[:5] == ("/py", "-m", "easel", "serve", spec.cli_name)
        url = f"http://127.0.0.1:{process.port}"
        assert gateway.env[f"EASEL_{spec.name.upper()}_URL"] == url
        assert f"EASEL_{spec.name.upper()}_URL" not in process.env  # not its own


def test_the_job_manager_calls_generation_by_url_and_workers_replace_its_own() -> None:
    plan = by_name(build_plan(EaselSettings.load()))
    # A job manager without the URL would load a second generation model in its process.
    assert plan["job-manager"].env["EASEL_GENERATION_URL"] == "http://127.0.0.1:8001"
    assert "EASEL_JOBS_IN_PROCESS_WORKER" not in plan["job-manager"].env

    plan = by_name(build_plan(EaselSettings.load(pod_workers=1)))
    assert plan["job-manager"].env["EASEL_JOBS_IN_PROCESS_WORKER"] == "false"
    worker = plan["worker-1"]
    assert worker.argv == (sys.executable, "-m", "easel", "worker")
    assert worker.env["EASEL_GENERATION_URL"] == "http://127.0.0.1:8001"
    assert worker.health_url is None and worker.port is None


def test_a_chosen_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EASEL_POD_SERVICES", "gateway, image-utils")
    plan = build_plan(EaselSettings.load())
    assert names(plan) == ["image-utils", "gateway"]
    # Services outside the pod stay as configured: in-process in the gateway, or remote.
    assert dict(plan[1].env) == {"EASEL_IMAGE_UTILS_URL": "http://127.0.0.1:8003"}


def test_an_unknown_service_is_refused() -> None:
    with pytest.raises(PlanError, match="'imagine'.*image-utils"):
        build_plan(EaselSettings.load(pod_services=("gateway", "imagine")))


def test_a_wildcard_bind_is_reached_on_loopback() -> None:
    plan = by_name(build_plan(EaselSettings.load(host="0.0.0.0", generation_host="::")))  # noqa: S104
    assert plan["gateway"].argv[-4:] == ("--host", "0.0.0.0", "--port", "8000")
    assert plan["gateway"].health_url == "http://127.0.0.1:8000/api/health"
    assert plan["gateway"].env["EASEL_GENERATION_URL"] == "http://127.0.0.1:8001"
    assert plan["generation"].argv[-4:-2] == ("--host", "::")
    # Only the gateway is public: the other services listen on loopback.
    assert plan["image-utils"].argv[-4:-2] == ("--host", "127.0.0.1")


def test_a_service_is_named_by_its_cli_name() -> None:
    assert process_name("job_manager") == "job-manager"
    assert process_name("jobs") == "job-manager"  # compat: the pod's first name for it
    assert process_name("image_utils") == "image-utils"
    assert process_name("gateway") == "gateway" and process_name("worker-1") == "worker-1"
