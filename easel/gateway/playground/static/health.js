// The Health tab: every service's status through the gateway (`/api/system/health`).

import { $, busy, clearError, el, showError } from "./ui.js";

const SERVICES = {
  generation: "Generation",
  segmentation: "Segmentation",
  image_utils: "Image utils",
  job_manager: "Job manager",
};

export function setupHealth(ctx) {
  const error = $("#health-error");
  const button = $("#health-refresh");

  async function refresh() {
    await busy(button, null, async () => {
      clearError(error);
      try {
        render(await ctx.client.health({ deep: $("#health-deep").checked }));
      } catch (reason) {
        showError(error, reason);
        if (reason.status === 401 || reason.status === 403) {
          error.prepend(el("strong", { text: "An API key with the admin scope is needed to see the services' health. " }));
        }
      }
    });
  }

  button.addEventListener("click", refresh);
  ctx.tabs.addEventListener("change", (event) => event.detail === "health" && refresh());
  document.addEventListener("easel:key-changed", refresh);
  ctx.refreshHealth = refresh;
  refresh();
}

function render(health) {
  const overall = $("#health-overall");
  overall.textContent = `${health.status}${health.version ? ` · easel ${health.version}` : ""}`;
  overall.dataset.status = health.status;
  const rows = Object.entries(health.services).map(([name, service]) =>
    el(
      "tr",
      { "data-service": name },
      el("th", { scope: "row", text: SERVICES[name] || name }),
      el("td", {}, el("span", { class: "badge", "data-status": service.status, text: service.status })),
      el("td", { text: service.latency_ms !== undefined && service.latency_ms !== null ? `${Math.round(service.latency_ms)} ms` : "–" }),
      el("td", { text: service.location || service.mode || "" }),
      el("td", {}, el("details", {}, el("summary", { text: summary(name, service) }), el("pre", { text: JSON.stringify(service.detail ?? service, null, 2) }))),
    ),
  );
  $("#health-rows").replaceChildren(...rows);
}

function summary(name, service) {
  const detail = service.detail || {};
  if (service.error || detail.error) return String(service.error || detail.error).slice(0, 80);
  if (name === "generation") return [detail.engine, detail.default_model].filter(Boolean).join(" · ") || "details";
  if (name === "segmentation") return detail.segmenter || "details";
  if (name === "job_manager") return detail.backend || "details";
  return "details";
}
