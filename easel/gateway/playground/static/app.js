// The playground page: one client of the public API, shared by every tab.

import { setupApiKey, storedKey } from "./api-key.js";
import { Easel } from "./easel.js";
import { setupEdit } from "./edit.js";
import { setupGenerate } from "./generate.js";
import { setupHealth } from "./health.js";
import { setupImageUtils } from "./image-utils.js";
import { setupJobs } from "./jobs.js";
import { Tabs } from "./tabs.js";
import { $ } from "./ui.js";

const ctx = {
  client: new Easel({ apiKey: storedKey() }),
  tabs: new Tabs($('[role="tablist"]')),
  // Filled in by the tabs that own them:
  sendToEdit: () => {},
  sendToUtils: () => {},
  jobsChanged: () => {},
  editState: null,
};

setupApiKey(ctx);
setupEdit(ctx);
setupImageUtils(ctx);
setupGenerate(ctx);
setupJobs(ctx);
setupHealth(ctx);
document.addEventListener("easel:key-changed", () => ctx.loadChoices());
document.body.dataset.ready = "true";
