// The Generate tab: the request form, the streamed progress and previews, the gallery,
// and "Queue as job".

import { addResult } from "./gallery.js";
import { ProgressView } from "./progress.js";
import { $, busy, clearError, compact, el, numberOf, showError } from "./ui.js";

export function setupGenerate(ctx) {
  const form = $("#generate-form");
  const error = $("#gen-error");
  const stop = $("#gen-stop");
  const progress = new ProgressView($("#gen-progress-box"));
  let running = null; // the AbortController of the stream in flight

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const request = requestOf(form);
    running = new AbortController();
    stop.hidden = false;
    progress.start();
    await busy($("#gen-submit"), error, async () => {
      const result = await ctx.client.generate(
        { ...request, preview_every: $("#gen-previews").checked ? 1 : undefined },
        { onEvent: (e) => progress.show(e), signal: running.signal },
      );
      progress.done(result);
      addResult($("#gallery"), result, request, ctx);
    });
    if (!error.hidden) progress.failed();
    stop.hidden = true;
    running = null;
  });
  stop.addEventListener("click", () => {
    running?.abort();
    progress.failed("Stopped.");
  });

  $("#gen-queue").addEventListener("click", async (event) => {
    if (!form.reportValidity()) return;
    const note = $("#gen-job-note");
    note.hidden = true;
    await busy(event.currentTarget, error, async () => {
      const job = await ctx.client.submit(requestOf(form));
      note.replaceChildren(
        `Queued job ${job.task_id.slice(0, 8)}. `,
        el("a", { href: "#jobs" }, "See it in Jobs"),
      );
      note.hidden = false;
      ctx.jobsChanged();
    });
  });

  ctx.loadChoices = () => loadChoices(ctx, error);
  ctx.loadChoices();
}

/** The generation request the form describes (empty fields: the server's defaults). */
function requestOf(form) {
  const field = (name) => form.elements.namedItem(name);
  return compact({
    prompt: field("prompt").value.trim(),
    negative_prompt: field("negative_prompt").value.trim(),
    model: field("model").value,
    style: field("style").value,
    width: numberOf(field("width")),
    height: numberOf(field("height")),
    steps: numberOf(field("steps")),
    guidance_scale: numberOf(field("guidance_scale")),
    seed: numberOf(field("seed")),
    num_images: numberOf(field("num_images")),
  });
}

/** Fill the model and style choices from the server. */
async function loadChoices(ctx, error) {
  const [models, styles] = await Promise.allSettled([ctx.client.models(), ctx.client.styles()]);
  if (models.status === "fulfilled") {
    const catalogue = models.value;
    const options = catalogue.models.map((model) =>
      el("option", { value: model.name, title: model.description || null },
        `${model.name}${model.family ? ` (${model.family})` : ""}${model.loaded ? " · loaded" : ""}`),
    );
    fill($("#gen-model"), `default (${catalogue.default_model})`, options);
    ctx.models = catalogue.models;
  }
  if (styles.status === "fulfilled") {
    fill($("#gen-style"), "none", styles.value.styles.map((name) => el("option", { value: name }, name)));
  }
  if (models.status === "fulfilled" && styles.status === "fulfilled") clearError(error);
  for (const answer of [models, styles]) {
    // A server without the route keeps the defaults; any other refusal is shown.
    if (answer.status === "rejected" && answer.reason.status !== 404) showError(error, answer.reason);
  }
}

function fill(select, defaultLabel, options) {
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, defaultLabel), ...options);
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
}
