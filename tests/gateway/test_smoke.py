from tests.support.images import b64, scene


def test_resize_through_gateway(api):
    response = api.post("/api/image-utils/resize", json={"image": b64(scene()), "scale": 0.5})
    assert response.status_code == 200, response.text
    assert (response.json()["width"], response.json()["height"]) == (48, 32)
