"""Image utilities service: resize, crop, convert, extract-object, diff, canny, mask."""
