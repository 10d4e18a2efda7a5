// Small DOM helpers shared by the page's modules.

/** The first element matching `selector` (in `root`), or an error naming it. */
export function $(selector, root = document) {
  const found = root.querySelector(selector);
  if (!found) throw new Error(`the page has no ${selector}`);
  return found;
}

/** A new element: `el("button", {type: "button", class: "x"}, "text", child)`. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/**
 * Show an error inline in `target` (a `.error` element): the server's message, its
 * code and request id. A 401 also tells the page to ask for an API key.
 */
export function showError(target, error) {
  target.hidden = false;
  target.replaceChildren(el("span", { text: error.message || String(error) }));
  const meta = [error.code, error.status ? `HTTP ${error.status}` : null];
  if (error.requestId) meta.push(`request ${error.requestId}`);
  const said = meta.filter(Boolean).join(" · ");
  if (said) target.append(" ", el("small", { text: `(${said})` }));
  if (error.status === 401) document.dispatchEvent(new CustomEvent("easel:unauthorized"));
}

export function clearError(target) {
  target.hidden = true;
  target.replaceChildren();
}

/** The number in an input, or null when it is empty. */
export function numberOf(input) {
  const text = input.value.trim();
  return text === "" ? null : Number(text);
}

/** `body` without its null, undefined and empty-string fields. */
export function compact(body) {
  return Object.fromEntries(
    Object.entries(body).filter(([, value]) => value !== null && value !== undefined && value !== ""),
  );
}

/** An <img> loaded from `src` (resolves once decoded). */
export async function loadImage(src) {
  const image = new Image();
  image.src = src;
  await image.decode();
  return image;
}

/** Run `action` with `button` disabled, and show its error in `errorTarget`. */
export async function busy(button, errorTarget, action) {
  button.disabled = true;
  if (errorTarget) clearError(errorTarget);
  try {
    return await action();
  } catch (error) {
    if (error.name === "AbortError") return undefined;
    if (errorTarget) showError(errorTarget, error);
    else throw error;
    return undefined;
  } finally {
    button.disabled = false;
  }
}
