/**
 * easel.js: a dependency-free client of easel's public API, as an ES module.
 *
 * It runs wherever `fetch` and `ReadableStream` do (browsers, Deno, Bun, Node 18+). The
 * playground page uses it, and so can any front end:
 *
 * ```js
 * import { Easel } from "http://127.0.0.1:8000/static/easel.js";
 *
 * const easel = new Easel({ baseUrl: "http://127.0.0.1:8000", apiKey: "..." });
 * const result = await easel.generate(
 *   { prompt: "a lighthouse at dusk", steps: 20 },
 *   { onEvent: (event) => event.type === "progress" && console.log(event.step, event.total) },
 * );
 * img.src = dataUrl(result.images[0]);
 * ```
 *
 * Images travel as base64 strings (with or without a `data:` prefix); `toBase64()` turns a
 * Blob, File or bytes into one and `dataUrl()` turns a result image into a URL. Every
 * failure is an {@link EaselError} carrying the server's error envelope.
 *
 * Server-sent events are read from a `fetch` response body, not `EventSource`, because
 * `EventSource` can neither POST nor send an `Authorization` header.
 *
 * @module easel
 */

/**
 * @typedef {object} GenerationRequest
 * @property {string} [prompt] Required for every mode but pure edits.
 * @property {"text-to-image"|"edit"|"inpaint"} [mode] Inferred from the images when absent.
 * @property {string} [input_image] Base64 image (edit, inpaint).
 * @property {string} [mask_image] Base64 mask, the input's size; white = repaint (inpaint).
 * @property {string} [negative_prompt]
 * @property {string} [style] One of {@link Easel#styles}.
 * @property {number} [width]
 * @property {number} [height]
 * @property {number} [steps]
 * @property {number} [guidance_scale]
 * @property {number} [seed] Random when absent.
 * @property {number} [num_images]
 * @property {"png"|"jpeg"|"webp"} [output_format]
 * @property {number} [quality]
 * @property {string} [model] One of {@link Easel#models}; the default when absent.
 * @property {Object<string, (number|string|boolean|null)>} [extra_params]
 * @property {number} [preview_every] Streams only: a low-resolution preview every k steps.
 */

/**
 * @typedef {object} GeneratedImage
 * @property {string} image Base64 of the encoded image.
 * @property {number} seed
 * @property {string} format `png`, `jpeg` or `webp`.
 * @property {string} media_type
 * @property {number} width
 * @property {number} height
 */

/**
 * @typedef {object} GenerationResult
 * @property {GeneratedImage[]} images
 * @property {number} seed The first image's seed; image i used seed + i.
 * @property {string} model
 * @property {string} mode
 * @property {number} width
 * @property {number} height
 * @property {number} steps
 * @property {number} guidance_scale
 * @property {{queue_wait_ms: number, inference_ms: number, encode_ms: number, total_ms: number}} timings
 * @property {string[]} warnings
 * @property {string} [task_id] Results of jobs only.
 */

/**
 * An event of `POST /api/generate/stream` (`queued`, `started`, `progress`, then `result`,
 * `error` or `cancelled`) or of a job's log (`GET /api/generate/events/{id}`: also
 * `generation_queued`, `generation_started`, `waiting`). Its fields are the server's JSON.
 *
 * @typedef {object} EaselEvent
 * @property {string} type
 * @property {number} [step] `progress`: steps done.
 * @property {number} [total] `progress`: steps in all.
 * @property {string} [preview] `progress`: a low-resolution PNG, base64.
 * @property {number} [position] `queued`: requests ahead of this one.
 * @property {string} [request_id] `queued`: cancels the request (`cancelRequest`).
 * @property {GenerationResult} [result] `result`.
 * @property {{code: string, message: string, details?: any}} [error] `error`.
 * @property {number|string} [status] `error` of a stream: the HTTP status; of a job: its status.
 * @property {number} [id] Job events only: the event's id in the job's log (`lastEventId`).
 */

/**
 * @typedef {object} JobView
 * @property {string} task_id
 * @property {string} owner
 * @property {"queued"|"running"|"done"|"failed"|"cancelled"|"expired"} status
 * @property {{step: number, total: number}} progress
 * @property {number|null} queue_position
 * @property {number|null} eta_s Estimated seconds until it finishes.
 * @property {number} attempts
 * @property {{created_at: number, started_at: number|null, finished_at: number|null}} timestamps
 * @property {object|null} [error]
 */

/**
 * @typedef {object} SmartMaskRequest
 * @property {string} [image] Base64 image; or `image_id` from {@link Easel#prepare}.
 * @property {string} [image_id] A prepared image: only the clicks travel.
 * @property {Array<[number, number]>} [points] Clicked points `[x, y]` in image pixels.
 * @property {Array<0|1>} [labels] One per point: 1 selects, 0 excludes.
 * @property {[number, number, number, number]} [box] `[x1, y1, x2, y2]` around the object.
 * @property {object} [refine] `{dilate, erode, feather, fill_holes, threshold, invert}`.
 */

/**
 * @typedef {object} SmartMaskResult
 * @property {string} mask Base64 PNG, single channel, the image's size; 255 selects.
 * @property {number[]|null} bbox `[x1, y1, x2, y2]` of the selection (x2, y2 exclusive).
 * @property {number} area Selected pixels.
 * @property {number} score 0-1.
 * @property {string} model `fastsam` or `grabcut`.
 * @property {number} width
 * @property {number} height
 */

/** Job statuses after which nothing changes. */
export const TERMINAL_STATUSES = Object.freeze(["done", "failed", "cancelled", "expired"]);

/** The image-utils operations, for {@link Easel#imageUtil}. */
export const IMAGE_OPS = Object.freeze([
  "resize", "crop", "convert", "extract-object", "diff", "canny", "mask",
]);

/**
 * A failed call: the server's error envelope `{error: {code, message, details}, request_id}`
 * and the HTTP status, or `network_error` (status 0) when the server could not be reached.
 */
export class EaselError extends Error {
  /**
   * @param {object} fields
   * @param {string} fields.code e.g. `invalid_input`, `unauthorized`, `not_found`, `cancelled`.
   * @param {string} fields.message The server's message.
   * @param {any} [fields.details] e.g. `[{field, message}]` for invalid input.
   * @param {string|null} [fields.requestId] The request's `X-Request-ID`.
   * @param {number|null} [fields.status] The HTTP status; 0 when no answer came.
   */
  constructor({ code, message, details = null, requestId = null, status = null }) {
    super(message);
    this.name = "EaselError";
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    this.status = status;
  }
}

/** The client. Each method is one call of the public API. */
export class Easel {
  /**
   * @param {object} [options]
   * @param {string} [options.baseUrl] The gateway, e.g. `http://127.0.0.1:8000`; `""` (the
   *   default) is the page's own server.
   * @param {string|null} [options.apiKey] Sent as `Authorization: Bearer`; may be changed later.
   * @param {typeof fetch} [options.fetch] Another fetch (tests, proxies).
   */
  constructor({ baseUrl = "", apiKey = null, fetch: fetchImpl = null } = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.apiKey = apiKey || null;
    this._fetch = fetchImpl || ((...args) => globalThis.fetch(...args));
  }

  // ---- generation ----------------------------------------------------------------------

  /**
   * Generate or edit, and wait for the images. With `onEvent` the request is streamed
   * (`POST /api/generate/stream`) and every event (progress, previews) is passed to it;
   * without, it is one `POST /api/generate`. Aborting `signal` cancels it on the server.
   *
   * @param {GenerationRequest} body
   * @param {{onEvent?: (event: EaselEvent) => void, signal?: AbortSignal}} [options]
   * @returns {Promise<GenerationResult>}
   */
  async generate(body, { onEvent = null, signal } = {}) {
    if (!onEvent) return this._json("POST", "/api/generate", { body, signal });
    for await (const event of this.stream(body, { signal })) {
      onEvent(event);
      const end = endOf(event);
      if (end) return end();
    }
    throw new EaselError({ code: "stream_ended", message: "the stream ended before a result" });
  }

  /**
   * The events of a streamed generation, as an async iterator: `queued`, `started`,
   * `progress`*, then `result`, `error` or `cancelled`. Leaving the loop early (or aborting
   * `signal`) closes the stream, which cancels the request.
   *
   * @param {GenerationRequest} body
   * @param {{signal?: AbortSignal}} [options]
   * @returns {AsyncGenerator<EaselEvent>}
   */
  async *stream(body, { signal } = {}) {
    const response = await this._send("POST", "/api/generate/stream", { body, signal });
    for await (const message of parseEventStream(response.body)) yield eventOf(message);
  }

  /**
   * Cancel a synchronous or streamed request by its request id (a `queued` event's).
   * @param {string} requestId
   */
  cancelRequest(requestId) {
    return this._json("POST", `/api/generate/requests/${encodeURIComponent(requestId)}/cancel`);
  }

  /** The style presets a request may name: `{styles: string[]}`. */
  styles() {
    return this._json("GET", "/api/generate/styles");
  }

  /**
   * The model catalogue: `{engine, default_model, models: [{name, family, description,
   * modes, loaded, default}]}`.
   */
  models() {
    return this._json("GET", "/api/models");
  }

  /** ComfyUI workflows and their parameters: `{engine, workflows, mode_workflows}`. */
  workflows() {
    return this._json("GET", "/api/workflows");
  }

  // ---- jobs ------------------------------------------------------------------------------

  /**
   * Queue a generation as a job: `{task_id, status: "queued"}`.
   * @param {GenerationRequest & {webhook?: object, timeout?: number}} body
   * @param {{idempotencyKey?: string, signal?: AbortSignal}} [options]
   */
  submit(body, { idempotencyKey = null, signal } = {}) {
    const headers = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    return this._json("POST", "/api/generate/async", { body, headers, signal });
  }

  /** @param {string} taskId @returns {Promise<JobView>} */
  status(taskId) {
    return this._json("GET", `/api/generate/status/${encodeURIComponent(taskId)}`);
  }

  /**
   * The images of a done job; a 409 `EaselError` while it is not done.
   * @param {string} taskId @returns {Promise<GenerationResult>}
   */
  result(taskId) {
    return this._json("GET", `/api/generate/result/${encodeURIComponent(taskId)}`);
  }

  /** Cancel a queued or running job (idempotent). @param {string} taskId @returns {Promise<JobView>} */
  cancel(taskId) {
    return this._json("POST", `/api/generate/cancel/${encodeURIComponent(taskId)}`);
  }

  /**
   * The calling key's jobs, newest first: `{jobs: JobView[], next_cursor}`.
   * @param {{status?: string, limit?: number, cursor?: string, owner?: string}} [query]
   */
  jobs(query = {}) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
    }
    const text = params.toString();
    return this._json("GET", "/api/jobs" + (text ? `?${text}` : ""));
  }

  /**
   * A job's events as an async iterator, live until its terminal event (`result` with the
   * images, `error` or `cancelled`). Each event's `id` may be passed back as `lastEventId`
   * to resume after it.
   *
   * @param {string} taskId
   * @param {{lastEventId?: number, signal?: AbortSignal}} [options]
   * @returns {AsyncGenerator<EaselEvent>}
   */
  async *events(taskId, { lastEventId = null, signal } = {}) {
    const headers = lastEventId !== null ? { "Last-Event-ID": String(lastEventId) } : {};
    const path = `/api/generate/events/${encodeURIComponent(taskId)}`;
    const response = await this._send("GET", path, { headers, signal });
    for await (const message of parseEventStream(response.body)) {
      const event = eventOf(message);
      if (message.id !== null && /^\d+$/.test(message.id)) event.id = Number(message.id);
      yield event;
    }
  }

  /**
   * Wait for a job through its events and return its result (or throw its error).
   * @param {string} taskId
   * @param {{onEvent?: (event: EaselEvent) => void, signal?: AbortSignal}} [options]
   * @returns {Promise<GenerationResult>}
   */
  async wait(taskId, { onEvent = null, signal } = {}) {
    for await (const event of this.events(taskId, { signal })) {
      if (onEvent) onEvent(event);
      const end = endOf(event);
      if (end) return end();
    }
    throw new EaselError({ code: "stream_ended", message: "the job's events ended early" });
  }

  // ---- segmentation and image utilities -----------------------------------------------

  /**
   * Upload an image once for many clicks: `{image_id, width, height, expires_in}`; send
   * `image_id` instead of `image` to `smartMask` (a 404 once it expired: prepare again).
   * @param {{image: string}} body
   */
  prepare(body, { signal } = {}) {
    return this._json("POST", "/api/smart-mask/prepare", { body, signal });
  }

  /** @param {SmartMaskRequest} body @returns {Promise<SmartMaskResult>} */
  smartMask(body, { signal } = {}) {
    return this._json("POST", "/api/smart-mask", { body, signal });
  }

  /**
   * One image-utils operation (see `IMAGE_OPS`); the body is the operation's fields, e.g.
   * `imageUtil("resize", {image, width: 256})`. Returns `{image, format, media_type, width,
   * height}` (diff: `{mae, mae_normalized, max_error, changed_fraction, heatmap}`).
   * @param {string} op
   * @param {object} body
   */
  imageUtil(op, body, { signal } = {}) {
    return this._json("POST", `/api/image-utils/${encodeURIComponent(op)}`, { body, signal });
  }

  // ---- health ----------------------------------------------------------------------------

  /**
   * Every service's health: `{status, version, services: {generation, segmentation,
   * image_utils, job_manager: {status, latency_ms, detail, ...}}}`.
   * @param {{deep?: boolean}} [options] `deep` wakes scaled-to-zero services.
   */
  health({ deep = false } = {}) {
    return this._json("GET", "/api/system/health" + (deep ? "?deep=true" : ""));
  }

  // ---- transport -------------------------------------------------------------------------

  /** The response of one call, or an `EaselError`. */
  async _send(method, path, { body, headers = {}, signal } = {}) {
    const all = { Accept: "application/json, text/event-stream", ...headers };
    if (this.apiKey) all.Authorization = `Bearer ${this.apiKey}`;
    if (body !== undefined) all["Content-Type"] = "application/json";
    let response;
    try {
      response = await this._fetch(this.baseUrl + path, {
        method,
        headers: all,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (cause) {
      if (cause && cause.name === "AbortError") throw cause;
      const where = this.baseUrl || "the server";
      throw new EaselError({
        code: "network_error",
        message: `cannot reach ${where}: ${cause && cause.message}`,
        status: 0,
      });
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  async _json(method, path, options) {
    const response = await this._send(method, path, options);
    return response.json();
  }
}

/** The `EaselError` of a failed response (the envelope, or what the body says). */
async function errorOf(response) {
  const text = await response.text().catch(() => "");
  let envelope = null;
  try {
    envelope = JSON.parse(text);
  } catch {
    // not JSON: a proxy's page, say
  }
  const error = envelope && typeof envelope.error === "object" ? envelope.error : null;
  return new EaselError({
    code: error?.code || `http_${response.status}`,
    message: error?.message || text.slice(0, 200) || response.statusText || "request failed",
    details: error?.details ?? null,
    requestId: envelope?.request_id || response.headers.get("x-request-id"),
    status: response.status,
  });
}

/** A parsed server-sent event's JSON (its `type` from the event name if absent). */
function eventOf(message) {
  let data;
  try {
    data = JSON.parse(message.data);
  } catch {
    data = { data: message.data };
  }
  if (!data.type) data.type = message.event;
  return data;
}

/** For a terminal event, a function that returns its result or throws its error. */
function endOf(event) {
  if (event.type === "result") return () => event.result;
  if (event.type === "error") {
    const error = event.error || {};
    const status = typeof event.status === "number" ? event.status : error.status ?? null;
    return () => {
      throw new EaselError({
        code: error.code || "error",
        message: error.message || "generation failed",
        details: error.details ?? null,
        status,
      });
    };
  }
  if (event.type === "cancelled") {
    return () => {
      throw new EaselError({ code: "cancelled", message: event.reason || "cancelled" });
    };
  }
  return null;
}

/**
 * Parse a `text/event-stream` body into messages `{event, data, id}` (the WHATWG rules:
 * `data` lines joined by newlines, comments skipped, `id` kept until changed). Breaking out
 * of the loop cancels the body.
 *
 * @param {ReadableStream<Uint8Array>} body
 * @returns {AsyncGenerator<{event: string, data: string, id: string|null}>}
 */
export async function* parseEventStream(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "";
  let data = [];
  let id = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // A chunk ending in "\r" may be half of a "\r\n": keep it for the next chunk.
      const end = buffer.endsWith("\r") ? buffer.length - 1 : buffer.length;
      const lines = buffer.slice(0, end).split(/\r\n|\r|\n/);
      buffer = lines.pop() + buffer.slice(end);
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { event: event || "message", data: data.join("\n"), id };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "event") event = text;
        else if (field === "id" && !text.includes("\0")) id = text;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * Base64 of a Blob, File, ArrayBuffer or typed array (what requests' image fields take).
 * @param {Blob|ArrayBuffer|ArrayBufferView} data
 * @returns {Promise<string>}
 */
export async function toBase64(data) {
  const bytes = new Uint8Array(await new Response(data).arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * A `data:` URL for an image of a result (`{image, media_type}`) or a base64 string.
 * @param {GeneratedImage|{image: string, media_type?: string}|string} image
 * @param {string} [mediaType] For a bare string; `image/png` by default.
 */
export function dataUrl(image, mediaType = "image/png") {
  const text = typeof image === "string" ? image : image.image;
  if (text.startsWith("data:")) return text;
  const type = typeof image === "string" ? mediaType : image.media_type || mediaType;
  return `data:${type};base64,${text}`;
}
