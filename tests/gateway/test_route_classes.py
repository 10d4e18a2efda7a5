import pytest

from easel.gateway.route_classes import RouteClass, classify


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/generate", RouteClass.GENERATE),
        ("/api/generate/async", RouteClass.GENERATE),
        ("/api/generate/validate", RouteClass.GENERATE),
        ("/api/generate/status/abc", RouteClass.JOBS),
        ("/api/generate/cancel/abc", RouteClass.JOBS),
        ("/api/generate/events/abc", RouteClass.JOBS),
        ("/api/jobs", RouteClass.JOBS),
        ("/api/models", RouteClass.GENERATE),
        ("/api/models/sdxl/load", RouteClass.ADMIN),
        ("/api/models/sdxl/unload", RouteClass.ADMIN),
        ("/api/modelsx", RouteClass.OTHER),
        ("/generate", RouteClass.GENERATE),
        ("/api/smart-mask/prepare", RouteClass.SEGMENT),
        ("/api/image-utils/resize", RouteClass.UTILS),
        ("/api/health", RouteClass.HEALTH),
        ("/health", RouteClass.HEALTH),
        ("/api/system/health", RouteClass.SYSTEM),
        ("/metrics", RouteClass.SYSTEM),
        ("/openapi.json", RouteClass.SYSTEM),
        ("/api/generated", RouteClass.OTHER),
        ("/nothing", RouteClass.OTHER),
    ],
)
def test_each_path_has_its_class(path: str, expected: RouteClass) -> None:
    assert classify(path) is expected
