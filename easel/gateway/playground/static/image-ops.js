// The image-utils operations as the Image utils tab shows them: their image fields and
// parameters, named as in the server's schemas (easel/image_utils/schemas.py). An empty
// field is left out of the request (the server's default applies).

const number = (name, label, extra = {}) => ({ name, label, kind: "number", ...extra });
const choice = (name, label, options) => ({ name, label, kind: "select", options });
const flag = (name, label) => ({ name, label, kind: "checkbox" });

export const OPS = [
  {
    name: "resize",
    label: "Resize",
    images: [["image", "Image"]],
    params: [
      number("width", "Width", { min: 1 }),
      number("height", "Height", { min: 1 }),
      number("scale", "Scale (instead of a size)", { min: 0, step: "any", placeholder: "0.5" }),
      choice("fit", "Fit", ["contain", "cover", "stretch"]),
      choice("resample", "Resample", ["lanczos", "bicubic", "bilinear", "nearest"]),
    ],
  },
  {
    name: "crop",
    label: "Crop",
    images: [["image", "Image"]],
    params: [
      number("x", "Left (x)", { min: 0, value: 0 }),
      number("y", "Top (y)", { min: 0, value: 0 }),
      number("width", "Width", { min: 1, value: 32 }),
      number("height", "Height", { min: 1, value: 32 }),
    ],
  },
  { name: "convert", label: "Convert", images: [["image", "Image"]], params: [] },
  {
    name: "extract-object",
    label: "Extract object",
    images: [["image", "Image"], ["mask", "Mask"]],
    params: [flag("crop", "Crop to the object"), number("padding", "Padding (px)", { min: 0 })],
  },
  { name: "diff", label: "Diff", images: [["image_a", "Image A"], ["image_b", "Image B"]], params: [] },
  {
    name: "canny",
    label: "Canny edges",
    images: [["image", "Image"]],
    params: [
      number("low_threshold", "Low threshold", { min: 0, max: 1000, value: 100 }),
      number("high_threshold", "High threshold", { min: 0, max: 1000, value: 200 }),
      choice("aperture_size", "Aperture", ["3", "5", "7"]),
      flag("l2_gradient", "L2 gradient"),
    ],
  },
  {
    name: "mask",
    label: "Mask refine",
    images: [["mask", "Mask"]],
    params: [
      number("threshold", "Threshold (0-255)", { min: 0, max: 255 }),
      flag("fill_holes", "Fill holes"),
      number("dilate", "Dilate (px)", { min: 0 }),
      number("erode", "Erode (px)", { min: 0 }),
      number("feather", "Feather (px)", { min: 0, step: "any" }),
      flag("invert", "Invert"),
    ],
  },
];

/** Every operation's output: the format and, for jpeg and webp, the quality. */
export const OUTPUT = [
  choice("output_format", "Output format", ["png", "jpeg", "webp"]),
  number("quality", "Quality (jpeg/webp)", { min: 1, max: 100 }),
];
