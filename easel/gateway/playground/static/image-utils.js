// The Image utils tab: pick an operation, its images and parameters, and see the result
// beside the input.

import { dataUrl, toBase64 } from "./easel.js";
import { OPS, OUTPUT } from "./image-ops.js";
import { $, busy, compact, el, numberOf } from "./ui.js";

export function setupImageUtils(ctx) {
  const select = $("#util-op");
  const fields = $("#util-fields");
  const error = $("#util-error");
  const sources = new Map(); // image field name -> base64, kept across operations
  select.replaceChildren(...OPS.map((op) => el("option", { value: op.name }, op.label)));

  const current = () => OPS.find((op) => op.name === select.value);

  function build() {
    const op = current();
    fields.replaceChildren(
      ...op.images.map(([name, label]) => imageField(name, label)),
      ...[...op.params, ...OUTPUT].map(paramField),
    );
    showInputs();
  }

  function imageField(name, label) {
    const id = `util-${name}`;
    const fromEdit = el("button", { type: "button", class: "small" }, "From Edit");
    fromEdit.addEventListener("click", () => {
      const edit = ctx.editState || {};
      const image = name === "mask" ? edit.mask : edit.image;
      if (image) set(name, image);
    });
    const input = el("input", { id, type: "file", accept: "image/*" });
    input.addEventListener("change", async () => {
      if (input.files[0]) set(name, await toBase64(input.files[0]));
    });
    return el("div", { class: "field image-field" }, el("label", { for: id }, label), input, fromEdit);
  }

  function set(name, image) {
    sources.set(name, image.replace(/^data:[^,]*,/, ""));
    showInputs();
  }

  function showInputs() {
    const figures = current().images
      .filter(([name]) => sources.has(name))
      .map(([name, label]) => figure(`${label} (input)`, dataUrl(sources.get(name))));
    const none = el("p", { class: "note", text: "Choose an image, or “Utils” on a result." });
    $("#util-inputs").replaceChildren(...(figures.length ? figures : [none]));
  }

  $("#util-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const op = current();
    busy($("#util-run"), error, async () => {
      const missing = op.images.filter(([name]) => !sources.has(name)).map(([, label]) => label);
      if (missing.length) throw new Error(`Choose: ${missing.join(", ")}`);
      const body = compact({
        ...Object.fromEntries(op.images.map(([name]) => [name, sources.get(name)])),
        ...Object.fromEntries([...op.params, ...OUTPUT].map((p) => [p.name, valueOf(p)])),
      });
      showResult(op, await ctx.client.imageUtil(op.name, body));
    });
  });

  function showResult(op, answer) {
    const output = $("#util-result");
    if (op.name === "diff") {
      const facts = `MAE ${answer.mae.toFixed(2)} (${(answer.mae_normalized * 100).toFixed(1)}%), ` +
        `max ${answer.max_error}, ${(answer.changed_fraction * 100).toFixed(1)}% of pixels changed`;
      output.replaceChildren(figure(`Heat map: ${facts}`, dataUrl(answer.heatmap)));
      return;
    }
    const caption = `${op.label}: ${answer.width}×${answer.height} ${answer.format}`;
    const result = figure(caption, dataUrl(answer));
    const name = `easel-${op.name}.${answer.format === "jpeg" ? "jpg" : answer.format}`;
    result.append(el("a", { href: dataUrl(answer), download: name, class: "button" }, "Download"));
    output.replaceChildren(result);
  }

  select.addEventListener("change", build);
  ctx.sendToUtils = (image) => {
    ctx.tabs.show("utils");
    set(current().images[0][0], image.image);
  };
  build();
}

function paramField(param) {
  const id = `util-param-${param.name}`;
  let input;
  if (param.kind === "select") {
    input = el("select", { id, name: param.name }, ...param.options.map((o) => el("option", { value: o }, o)));
  } else if (param.kind === "checkbox") {
    input = el("input", { id, name: param.name, type: "checkbox" });
    return el("div", { class: "field check" }, input, el("label", { for: id }, param.label));
  } else {
    const { min, max, step, value, placeholder } = param;
    input = el("input", { id, name: param.name, type: "number", inputmode: "decimal", min, max, step, value, placeholder: placeholder ?? "default" });
  }
  input.dataset.param = param.name;
  return el("div", { class: "field" }, el("label", { for: id }, param.label), input);
}

function valueOf(param) {
  const input = document.getElementById(`util-param-${param.name}`);
  if (param.kind === "checkbox") return input.checked;
  if (param.kind === "number") return numberOf(input);
  return param.name === "aperture_size" ? Number(input.value) : input.value;
}

function figure(caption, src) {
  return el("figure", { class: "card" }, el("img", { src, alt: caption, class: "result" }), el("figcaption", { text: caption }));
}
