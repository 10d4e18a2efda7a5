// The Edit tab: an image (picked, dropped, or sent from a result), points and a box that
// ask the server for a smart mask, refining it, then inpainting or editing with a prompt.

import { dataUrl, toBase64 } from "./easel.js";
import { addResult } from "./gallery.js";
import { MaskCanvas } from "./mask-canvas.js";
import { ProgressView } from "./progress.js";
import { $, busy, clearError, compact, loadImage, numberOf, showError } from "./ui.js";

export function setupEdit(ctx) {
  const error = $("#edit-error");
  const info = $("#edit-mask-info");
  const state = { image: null, imageId: null, rawMask: null, mask: null, asked: 0 };
  const canvas = new MaskCanvas($("#edit-canvas"), (selection) => askMask(selection));
  const progress = new ProgressView($("#edit-progress-box"));

  async function open(image) {
    clearError(error);
    const picture = await loadImage(dataUrl(image));
    state.image = image.image.replace(/^data:[^,]*,/, "");
    // Uploaded once: the clicks then send only its id (a failure falls back to the image).
    state.imageId = ctx.client.prepare({ image: state.image }).then(
      (prepared) => prepared.image_id,
      () => null,
    );
    state.rawMask = state.mask = null;
    canvas.setImage(picture);
    $("#edit-stage").dataset.empty = "false";
    info.textContent = `${picture.naturalWidth}×${picture.naturalHeight}: click the object to mask.`;
    updateButtons();
  }

  async function openFile(file) {
    if (!file) return;
    try {
      await open({ image: await toBase64(file), media_type: file.type || "image/png" });
    } catch (reason) {
      showError(error, reason.status ? reason : new Error(`cannot open ${file.name}: not an image?`));
    }
  }

  async function askMask(selection) {
    if (!selection.points.length && !selection.box) return;
    const ask = ++state.asked; // only the latest answer is shown
    info.textContent = "Finding the mask…";
    clearError(error);
    try {
      const answer = await maskOf(selection);
      if (ask !== state.asked) return;
      await showMask(answer.mask, answer.mask);
      info.textContent = `Mask: ${answer.area} px, score ${answer.score.toFixed(2)} (${answer.model})`;
    } catch (reason) {
      if (ask === state.asked) showError(error, reason);
    }
  }

  async function maskOf(selection) {
    const imageId = await state.imageId;
    if (imageId) {
      try {
        return await ctx.client.smartMask(compact({ image_id: imageId, ...selection }));
      } catch (reason) {
        if (reason.status !== 404) throw reason;
        state.imageId = Promise.resolve(null); // expired: send the image from now on
      }
    }
    return ctx.client.smartMask(compact({ image: state.image, ...selection }));
  }

  async function showMask(raw, mask) {
    state.rawMask = raw;
    state.mask = mask;
    canvas.setMask(mask ? await loadImage(dataUrl(mask)) : null);
    const link = $("#edit-mask-download");
    link.hidden = !mask;
    if (mask) link.href = dataUrl(mask);
    updateButtons();
  }

  function updateButtons() {
    $("#edit-inpaint").disabled = !state.mask;
    $("#edit-refine").disabled = !state.rawMask;
    $("#edit-whole").disabled = !state.image;
  }

  async function run(button, mode) {
    if (!$("#edit-form").reportValidity()) return;
    const request = compact({
      mode,
      prompt: $("#edit-prompt").value.trim(),
      input_image: state.image,
      mask_image: mode === "inpaint" ? state.mask : null,
      steps: numberOf($("#edit-steps")),
      seed: numberOf($("#edit-seed")),
    });
    progress.start();
    await busy(button, error, async () => {
      const result = await ctx.client.generate(request, { onEvent: (e) => progress.show(e) });
      progress.done(result);
      addResult($("#edit-results"), result, request, ctx);
    });
    if (!error.hidden) progress.failed();
    updateButtons();
  }

  $("#edit-file").addEventListener("change", (event) => openFile(event.target.files[0]));
  const stage = $("#edit-stage");
  stage.addEventListener("dragover", (event) => {
    event.preventDefault();
    stage.classList.add("dropping");
  });
  stage.addEventListener("dragleave", () => stage.classList.remove("dropping"));
  stage.addEventListener("drop", (event) => {
    event.preventDefault();
    stage.classList.remove("dropping");
    openFile(event.dataTransfer.files[0]);
  });
  $("#edit-negative").addEventListener("change", (event) => (canvas.negative = event.target.checked));
  $("#edit-clear").addEventListener("click", () => {
    state.asked++;
    canvas.clear();
    showMask(null, null);
    if (state.image) info.textContent = "Click the object to mask.";
  });
  $("#edit-refine").addEventListener("click", (event) =>
    busy(event.currentTarget, error, async () => {
      const refine = { dilate: numberOf($("#edit-dilate")) || 0, feather: numberOf($("#edit-feather")) || 0 };
      const answer = await ctx.client.imageUtil("mask", { mask: state.rawMask, ...refine });
      await showMask(state.rawMask, answer.image);
      info.textContent = `Mask refined: dilate ${refine.dilate} px, feather ${refine.feather} px`;
    }),
  );
  $("#edit-form").addEventListener("submit", (event) => {
    event.preventDefault();
    run($("#edit-inpaint"), "inpaint");
  });
  $("#edit-whole").addEventListener("click", (event) => run(event.currentTarget, "edit"));

  ctx.sendToEdit = (image) => {
    ctx.tabs.show("edit");
    open(image).catch((reason) => showError(error, reason));
  };
  ctx.editState = state;
  updateButtons();
}
