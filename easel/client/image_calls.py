"""The calls on images: the smart mask (segmentation) and every image-utils op."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image

from easel.client.call import Call
from easel.client.images import ImageInput, decode_image, encode_image
from easel.client.results import DiffOutput, MaskOutput, PreparedImage

Point = tuple[float, float]
Box = tuple[float, float, float, float]


def _mask(body: Any) -> MaskOutput:
    return MaskOutput(body)


def _image(body: Any) -> Image.Image:
    return decode_image(body["image"])


def _diff(body: Any) -> DiffOutput:
    return DiffOutput(body)


def _prepared(body: Any) -> PreparedImage:
    return PreparedImage(
        image_id=str(body["image_id"]),
        width=int(body["width"]),
        height=int(body["height"]),
        expires_in=float(body["expires_in"]),
    )


def prepare(image: ImageInput) -> Call[PreparedImage]:
    return Call("POST", "/api/smart-mask/prepare", _prepared, {"image": encode_image(image)})


def smart_mask(
    image: ImageInput | PreparedImage,
    points: Sequence[Point],
    labels: Sequence[int] | None,
    box: Box | None,
    options: Mapping[str, Any],
) -> Call[MaskOutput]:
    source = (
        {"image_id": image.image_id}
        if isinstance(image, PreparedImage)
        else {"image": encode_image(image)}
    )
    body = {
        **source,
        "points": [list(point) for point in points],
        "labels": None if labels is None else list(labels),
        "box": None if box is None else list(box),
        **options,
    }
    return Call("POST", "/api/smart-mask", _mask, body)


def image_op(op: str, images: Mapping[str, ImageInput], fields: Mapping[str, Any]) -> Call[Any]:
    """`POST /api/image-utils/{op}` with its image fields encoded and its other fields."""
    body = {name: encode_image(image) for name, image in images.items()}
    body.update(fields)
    return Call("POST", f"/api/image-utils/{op}", _diff if op == "diff" else _image, body)


def resize(image: ImageInput, options: Mapping[str, Any]) -> Call[Image.Image]:
    return image_op("resize", {"image": image}, options)


def crop(image: ImageInput, box: Mapping[str, Any]) -> Call[Image.Image]:
    return image_op("crop", {"image": image}, box)


def convert(image: ImageInput, options: Mapping[str, Any]) -> Call[Image.Image]:
    return image_op("convert", {"image": image}, options)


def extract_object(
    image: ImageInput, mask: ImageInput, options: Mapping[str, Any]
) -> Call[Image.Image]:
    return image_op("extract-object", {"image": image, "mask": mask}, options)


def diff(image_a: ImageInput, image_b: ImageInput) -> Call[DiffOutput]:
    return image_op("diff", {"image_a": image_a, "image_b": image_b}, {})


def canny(image: ImageInput, options: Mapping[str, Any]) -> Call[Image.Image]:
    return image_op("canny", {"image": image}, options)


def refine_mask(mask: ImageInput, options: Mapping[str, Any]) -> Call[Image.Image]:
    return image_op("mask", {"mask": mask}, options)
