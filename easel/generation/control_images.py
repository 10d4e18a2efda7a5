"""A request's control images, read as its input image is: decoded by the codec, turned into
their condition where asked (canny: the image-utils op's own edge map), and checked to be
the size the request will run at. Any engine: what a ControlNet sees is decided here."""

from __future__ import annotations

from PIL import Image

from easel.core.edges import canny
from easel.core.errors import InvalidInput
from easel.core.generation_api import GenerationRequest
from easel.core.images import ImageCodec

# Control types with a preprocessor here: `preprocess: true` turns a photo into the condition.
PREPROCESSORS = {"canny": canny}


def decode_controls(
    request: GenerationRequest, codec: ImageCodec, input_size: tuple[int, int] | None
) -> list[Image.Image]:
    """One condition image per `request.control`, in order; InvalidInput naming the field.
    Blocking (decoding, edges): run it in a thread."""
    images = []
    for index, control in enumerate(request.control):
        where = f"control[{index}]"
        preprocessor = PREPROCESSORS.get(control.type)
        if control.preprocess and preprocessor is None:
            raise InvalidInput.field(
                f"{where}.preprocess",
                f"{control.type!r} has no preprocessor here (only {', '.join(PREPROCESSORS)}); "
                "send its condition image itself",
            )
        image = codec.decode(control.image, f"{where}.image").convert("RGB")
        if control.preprocess and preprocessor is not None:
            image = preprocessor(image).convert("RGB")
        images.append(image)
    if images:
        _check_sizes(request, images, input_size)
    return images


def _check_sizes(
    request: GenerationRequest, images: list[Image.Image], input_size: tuple[int, int] | None
) -> None:
    """Every control image is the output's size: the request's width and height, else the
    input image's, else (neither given) the first control image's, which then sets it."""
    fallback, of = (
        (input_size, "input_image") if input_size else (images[0].size, "control[0].image")
    )
    width = request.width or fallback[0]
    height = request.height or fallback[1]
    given = [name for name in ("width", "height") if getattr(request, name) is not None]
    source = " and ".join(given if len(given) == 2 else [*given, of])
    for index, image in enumerate(images):
        if image.size != (width, height):
            raise InvalidInput.field(
                f"control[{index}].image",
                f"size {image.width}x{image.height} does not match the output size "
                f"{width}x{height} (from {source})",
            )
