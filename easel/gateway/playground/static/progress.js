// A progress bar, its caption and the live preview of one streamed generation.

import { dataUrl } from "./easel.js";
import { $ } from "./ui.js";

/** The progress bar, its caption and the live preview of one streamed generation. */
export class ProgressView {
  constructor(box) {
    this.box = box;
    this.bar = $("progress", box);
    this.caption = $(".caption", box);
    this.preview = $("img.preview", box);
  }

  start() {
    this.box.hidden = false;
    this.box.dataset.state = "running";
    this.bar.removeAttribute("value");
    this.caption.textContent = "Sending…";
    this.preview.hidden = true;
  }

  show(event) {
    if (event.type === "queued") {
      this.caption.textContent = event.position ? `Queued: ${event.position} ahead` : "Queued: next";
    } else if (event.type === "started") {
      this.caption.textContent = "Started…";
    } else if (event.type === "progress") {
      this.bar.max = event.total;
      this.bar.value = event.step;
      this.caption.textContent = `Step ${event.step} / ${event.total}`;
      if (event.preview) {
        this.preview.src = dataUrl(event.preview);
        this.preview.hidden = false;
      }
    }
  }

  done(result) {
    this.box.dataset.state = "done";
    this.bar.max = 1;
    this.bar.value = 1;
    const seconds = (result.timings.total_ms / 1000).toFixed(1);
    this.caption.textContent = `Done: ${result.images.length} image(s) in ${seconds} s`;
  }

  failed(text = "Failed.") {
    this.box.dataset.state = "failed";
    this.caption.textContent = text;
  }
}
