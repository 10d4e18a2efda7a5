// Result cards: each image with the parameters that made it, a download link and
// buttons to take it on to the Edit or Image utils tab.

import { dataUrl } from "./easel.js";
import { el } from "./ui.js";

const EXTENSIONS = { png: "png", jpeg: "jpg", webp: "webp" };

/**
 * Cards for every image of `result` (a generation result), newest first in `list`.
 * `request` is what was asked (its prompt goes on the card).
 */
export function addResult(list, result, request, ctx) {
  const cards = result.images.map((image, index) => card(image, index, result, request, ctx));
  list.prepend(...cards);
  return cards;
}

function card(image, index, result, request, ctx) {
  const url = dataUrl(image);
  const prompt = request.prompt || "(no prompt)";
  const name = `easel-${result.mode}-${image.seed}.${EXTENSIONS[image.format] || "png"}`;
  const facts = [
    ["mode", result.mode],
    ["model", result.model],
    ["size", `${image.width}×${image.height}`],
    ["steps", result.steps],
    ["guidance", result.guidance_scale],
    ["seed", image.seed],
    ["time", result.timings ? `${(result.timings.total_ms / 1000).toFixed(1)} s` : null],
    ["job", result.task_id ? result.task_id.slice(0, 8) : null],
  ].filter(([, value]) => value !== null && value !== undefined);
  const actions = el(
    "div",
    { class: "actions" },
    el("a", { href: url, download: name, class: "button" }, "Download"),
    el("button", { type: "button", onclick: () => ctx.sendToEdit(image) }, "Edit"),
    el("button", { type: "button", onclick: () => ctx.sendToUtils(image) }, "Utils"),
  );
  return el(
    "figure",
    { class: "card", "data-seed": image.seed, "data-index": index },
    el("img", { src: url, alt: `${result.mode} result: ${prompt}`, class: "result" }),
    el(
      "figcaption",
      {},
      el("p", { class: "prompt", text: prompt }),
      el("dl", {}, ...facts.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: String(value) })])),
      result.warnings?.length ? el("p", { class: "warning", text: result.warnings.join("; ") }) : null,
      actions,
    ),
  );
}
