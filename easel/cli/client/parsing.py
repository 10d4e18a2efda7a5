"""Option values typed as text: points, boxes and sizes. A bad one is click's usage error
(exit 2) naming the option. (Named tuples: typer takes a list of a plain class only.)"""

from __future__ import annotations

from typing import NamedTuple

import typer


class Point(NamedTuple):
    x: float
    y: float


class Box(NamedTuple):
    x1: float
    y1: float
    x2: float
    y2: float


class Size(NamedTuple):
    width: int
    height: int


def _numbers(text: str, count: int, shape: str) -> list[float]:
    try:
        values = [float(part) for part in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise typer.BadParameter(f"{text!r} is not {shape} (numbers, comma-separated)")
    return values


def point(text: str) -> Point:
    """`120,80` -> Point(120.0, 80.0): x, y in the image's pixels."""
    return Point(*_numbers(text, 2, "X,Y"))


def box(text: str) -> Box:
    """`x1,y1,x2,y2` around the object."""
    return Box(*_numbers(text, 4, "X1,Y1,X2,Y2"))


def size(text: str) -> Size:
    """`512x768` (or 512,768) -> Size(512, 768)."""
    parts = text.lower().replace(",", "x").split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise typer.BadParameter(f"{text!r} is not WIDTHxHEIGHT, e.g. 512x512")
    return Size(int(parts[0]), int(parts[1]))
