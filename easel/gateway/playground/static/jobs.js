// The Jobs tab: the job list (status, progress, queue position, ETA), kept fresh while
// the tab is shown; cancel a job, open a done one's result.

import { TERMINAL_STATUSES } from "./easel.js";
import { addResult } from "./gallery.js";
import { $, busy, clearError, el, showError } from "./ui.js";

const ACTIVE_POLL_MS = 1000;
const IDLE_POLL_MS = 5000;

export function setupJobs(ctx) {
  const list = $("#job-list");
  const error = $("#jobs-error");
  const filter = $("#jobs-filter");
  let timer = null;
  let active = false;

  async function refresh() {
    clearTimeout(timer);
    try {
      const answer = await ctx.client.jobs({ status: filter.value, limit: 50 });
      clearError(error);
      render(list, answer.jobs, actions);
      active = answer.jobs.some((job) => !TERMINAL_STATUSES.includes(job.status));
      $("#jobs-empty").hidden = answer.jobs.length > 0;
    } catch (reason) {
      showError(error, reason);
    }
    if (ctx.tabs.current === "jobs" && document.visibilityState === "visible") {
      timer = setTimeout(refresh, active ? ACTIVE_POLL_MS : IDLE_POLL_MS);
    }
  }

  const actions = {
    cancel: (job, button) =>
      busy(button, error, async () => {
        await ctx.client.cancel(job.task_id);
        await refresh();
      }),
    open: (job, button) =>
      busy(button, error, async () => {
        const result = await ctx.client.result(job.task_id);
        addResult($("#job-results"), result, { prompt: `job ${job.task_id.slice(0, 8)}` }, ctx);
        $("#job-results").scrollIntoView({ block: "nearest" });
      }),
  };

  $("#jobs-refresh").addEventListener("click", refresh);
  filter.addEventListener("change", refresh);
  ctx.tabs.addEventListener("change", (event) => event.detail === "jobs" && refresh());
  document.addEventListener("visibilitychange", () => ctx.tabs.current === "jobs" && refresh());
  ctx.jobsChanged = () => ctx.tabs.current === "jobs" && refresh();
  if (ctx.tabs.current === "jobs") refresh();
}

/** Update `list` in place to show `jobs` (rows keyed by task id, so buttons stay put). */
function render(list, jobs, actions) {
  const rows = new Map([...list.children].map((row) => [row.dataset.taskId, row]));
  jobs.forEach((job, index) => {
    const row = rows.get(job.task_id) || newRow(job, actions);
    rows.delete(job.task_id);
    update(row, job);
    if (list.children[index] !== row) list.insertBefore(row, list.children[index] || null);
  });
  for (const gone of rows.values()) gone.remove();
}

function newRow(job, actions) {
  const short = job.task_id.slice(0, 8);
  const row = el(
    "li",
    { class: "job", "data-task-id": job.task_id },
    el("div", { class: "job-head" },
      el("code", { title: job.task_id, text: short }),
      el("span", { class: "badge" }),
      el("span", { class: "when", text: new Date(job.timestamps.created_at * 1000).toLocaleTimeString() }),
    ),
    el("progress", { "aria-label": `progress of job ${short}` }),
    el("span", { class: "facts" }),
    el("p", { class: "error", hidden: true }),
    el("div", { class: "actions" },
      el("button", { type: "button", class: "cancel", "aria-label": `Cancel job ${short}`, text: "Cancel" }),
      el("button", { type: "button", class: "open", "aria-label": `Open result of job ${short}`, text: "Open result" }),
    ),
  );
  row.job = job;
  row.querySelector(".cancel").addEventListener("click", (e) => actions.cancel(row.job, e.currentTarget));
  row.querySelector(".open").addEventListener("click", (e) => actions.open(row.job, e.currentTarget));
  return row;
}

function update(row, job) {
  row.job = job;
  row.dataset.status = job.status;
  row.querySelector(".badge").textContent = job.status;
  const bar = row.querySelector("progress");
  const { step, total } = job.progress;
  if (total > 0) {
    bar.max = total;
    bar.value = step;
  } else if (job.status === "done") {
    bar.max = 1;
    bar.value = 1;
  } else if (TERMINAL_STATUSES.includes(job.status)) {
    bar.max = 1;
    bar.value = 0;
  } else {
    bar.removeAttribute("value");
  }
  const facts = [];
  if (total > 0) facts.push(`step ${step} / ${total}`);
  if (job.queue_position !== null && job.queue_position !== undefined) {
    facts.push(job.queue_position ? `${job.queue_position} ahead in the queue` : "next in the queue");
  }
  if (job.eta_s !== null && job.eta_s !== undefined) facts.push(`ETA ${formatSeconds(job.eta_s)}`);
  if (job.waiting) facts.push("waiting for the generation service");
  row.querySelector(".facts").textContent = facts.join(" · ");
  const problem = row.querySelector(".error");
  problem.hidden = !job.error;
  problem.textContent = job.error ? job.error.message || job.error.code : "";
  row.querySelector(".cancel").hidden = TERMINAL_STATUSES.includes(job.status);
  row.querySelector(".open").hidden = job.status !== "done";
}

function formatSeconds(seconds) {
  if (seconds < 90) return `${Math.max(0, Math.round(seconds))} s`;
  return `${Math.round(seconds / 60)} min`;
}
