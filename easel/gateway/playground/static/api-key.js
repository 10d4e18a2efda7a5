// The API key panel: hidden until the server asks for a key (a 401 from any call) or a
// key is stored; the key is kept in localStorage and sent as `Authorization: Bearer`.

import { $ } from "./ui.js";

const STORAGE = "easel.apiKey";

export function storedKey() {
  try {
    return localStorage.getItem(STORAGE);
  } catch {
    return null; // storage refused (private mode, file://)
  }
}

export function setupApiKey(ctx) {
  const panel = $("#key-panel");
  const form = $("#key-form");
  const input = $("#api-key");
  const note = $("#key-note");
  input.value = ctx.client.apiKey || "";
  panel.hidden = !ctx.client.apiKey;

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = input.value.trim();
    ctx.client.apiKey = key || null;
    try {
      if (key) localStorage.setItem(STORAGE, key);
      else localStorage.removeItem(STORAGE);
    } catch {
      // not kept: it still works for this page
    }
    note.textContent = key ? "Key saved in this browser." : "Key forgotten.";
    document.dispatchEvent(new CustomEvent("easel:key-changed"));
  });
  $("#key-forget").addEventListener("click", () => {
    input.value = "";
    form.requestSubmit();
  });
  document.addEventListener("easel:unauthorized", () => {
    panel.hidden = false;
    note.textContent = ctx.client.apiKey
      ? "The server refused this key: check it, or use one with the needed scope."
      : "This server needs an API key.";
  });
}
