/* The pipeline's dashboard: reads the orchestrator's REST API of its own
 * origin every few seconds and draws the current view. Every value from the
 * API reaches the page as text (DOM nodes, textContent), never as markup. */
"use strict";

(() => {
  const POLL_MS = 4000;
  const PAGE = 20;
  const TOKEN_KEY = "transit-graph-pipeline.apiToken";
  const ENDED = new Set(["succeeded", "failed", "timed_out", "cancelled"]);
  const RETRYABLE = new Set(["failed", "timed_out", "cancelled"]);

  const state = {
    view: "now",
    runId: null,
    runsOffset: 0,
    dlOffset: 0,
    workers: {},        /* workerId -> metadata (timeoutMs, maxAttempts) */
    runDetails: new Map(), /* ended runs with their steps: they never change */
    skewMs: 0,          /* server clock minus this browser's clock */
  };

  /* ---- DOM helpers: text only -------------------------------------------- */

  const $ = (id) => document.getElementById(id);

  /* h("a", {href: "#x", class: "c"}, "text", child...): strings become text
   * nodes; attributes are set with setAttribute (no markup parsing). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  /* Replaces container's content when it changed, keeping the open
   * <details> and the focus of elements with the same data-key: a poll
   * neither steals the keyboard nor a text selection. */
  function replace(container, ...nodes) {
    const fresh = document.createElement(container.tagName);
    fresh.append(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
    const open = new Set();
    for (const d of container.querySelectorAll("details[open][data-key]")) open.add(d.dataset.key);
    for (const d of fresh.querySelectorAll("details[data-key]")) d.open = open.has(d.dataset.key);
    if (fresh.innerHTML === container.innerHTML) return;
    const active = document.activeElement;
    const focusKey = active && container.contains(active) ? active.dataset.key : null;
    container.replaceChildren(...fresh.childNodes);
    if (focusKey) {
      for (const el of container.querySelectorAll("[data-key]")) {
        if (el.dataset.key === focusKey) el.focus();
      }
    }
  }

  /* ---- formatting ---------------------------------------------------------- */

  const pad = (n) => String(n).padStart(2, "0");

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
    ms = Math.max(0, Math.round(ms));
    if (ms < 1000) return `${ms} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    const s = Math.round(ms / 1000);
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  const serverNow = () => Date.now() + state.skewMs;

  function relative(iso) {
    if (!iso) return "";
    const diff = Date.parse(iso) - serverNow();
    return diff >= 0 ? `in ${fmtMs(diff)}` : `${fmtMs(-diff)} ago`;
  }

  function fmtBytes(n) {
    if (n === null || n === undefined) return "—";
    if (n < 1024) return `${n} B`;
    if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1048576).toFixed(1)} MiB`;
  }

  const badge = (status) => h("span", {class: `badge s-${status || "none"}`}, status || "—");
  const runLink = (id, text) =>
    h("a", {href: `#run/${encodeURIComponent(id)}`, class: "mono", title: id}, text || id);

  function stepTime(step) {
    if (step.executionTimeMs !== null && step.executionTimeMs !== undefined) {
      return step.executionTimeMs;
    }
    if (step.startedAt) {
      const end = step.finishedAt ? Date.parse(step.finishedAt) : serverNow();
      return end - Date.parse(step.startedAt);
    }
    return null;
  }

  /* A running run's durationMs was measured by the server at its now():
   * from it, how far this browser's clock is off. */
  function learnSkew(run) {
    if (run && !ENDED.has(run.status) && typeof run.durationMs === "number") {
      state.skewMs = Date.parse(run.startedAt || run.createdAt) + run.durationMs - Date.now();
    }
  }

  /* ---- the token ------------------------------------------------------------ */

  let token = null;
  try {
    token = localStorage.getItem(TOKEN_KEY);
  } catch (e) {
    token = null; /* storage disabled: memory only */
  }

  function keepToken(value, remember) {
    token = value || null;
    try {
      if (token && remember) localStorage.setItem(TOKEN_KEY, token);
      else localStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      /* storage disabled: memory only */
    }
    $("token-button").textContent = token ? "API token ✓" : "API token";
  }

  let tokenWaiter = null;

  /* Opens the token dialog with why it is asked; resolves to the token the
   * user gave, or null when they cancelled. */
  function askToken(reason) {
    const dialog = $("token-dialog");
    $("token-reason").textContent = reason || "";
    $("token-input").value = "";
    $("token-remember").checked = (() => {
      try { return localStorage.getItem(TOKEN_KEY) !== null; } catch (e) { return false; }
    })();
    if (!dialog.open) dialog.showModal();
    $("token-input").focus();
    return new Promise((resolve) => {
      if (tokenWaiter) tokenWaiter(null);
      tokenWaiter = resolve;
    });
  }

  function closeToken(value) {
    const dialog = $("token-dialog");
    if (dialog.open) dialog.close();
    const waiter = tokenWaiter;
    tokenWaiter = null;
    if (waiter) waiter(value);
  }

  /* ---- the API ---------------------------------------------------------------- */

  class ApiError extends Error {
    constructor(status, body, fallback) {
      const msg = body && body.error && body.error.message;
      super(msg || fallback || `HTTP ${status}`);
      this.status = status;
    }
  }

  async function get(path) {
    const r = await fetch(path, {headers: {Accept: "application/json"}, cache: "no-store"});
    const body = await r.json().catch(() => null);
    if (!r.ok || !body) throw new ApiError(r.status, body, `${path}: HTTP ${r.status}`);
    return body;
  }

  /* A POST with the bearer token. On 401 asks for the token and tries again
   * until it is accepted or the user cancels; any other refusal is shown
   * with the API's own message. Returns the body, or null when refused. */
  async function post(path, what) {
    for (;;) {
      const headers = {Accept: "application/json", Prefer: "respond-async"};
      if (token) headers.Authorization = `Bearer ${token}`;
      let r;
      let body;
      try {
        r = await fetch(path, {method: "POST", headers, cache: "no-store"});
        body = await r.json().catch(() => null);
      } catch (e) {
        notify(`${what}: the orchestrator does not answer (${e.message})`, true);
        return null;
      }
      if (r.status === 401) {
        const reason = new ApiError(401, body).message;
        if (token) keepToken(null, false);
        const given = await askToken(`${what} was refused: ${reason}`);
        if (!given) {
          notify(`${what} was refused (401): ${reason}`, true);
          return null;
        }
        continue;
      }
      if (!r.ok) {
        notify(`${what} was refused (${r.status}): ${new ApiError(r.status, body).message}`, true);
        return null;
      }
      return body || {};
    }
  }

  /* ---- notices ------------------------------------------------------------------ */

  let noticeTimer = null;

  /* Errors stay until dismissed; other notices fade after a while, so an
   * old "run queued" does not outlive its run. */
  function notify(text, isError, link) {
    const box = $("notice");
    clearTimeout(noticeTimer);
    if (!isError) noticeTimer = setTimeout(() => { box.hidden = true; }, 20000);
    box.classList.toggle("error", !!isError);
    box.setAttribute("role", isError ? "alert" : "status");
    replace($("notice-text"), text, link ? [" ", link] : []);
    box.hidden = false;
  }

  /* ---- actions --------------------------------------------------------------------- */

  async function runPipeline(worker, force) {
    const path = worker
      ? `/api/v1/workers/${encodeURIComponent(worker)}/execute`
      : "/api/v1/workers/execute";
    const what = worker ? `Running ${worker}` : "Running the pipeline";
    const body = await post(`${path}?force=${force ? "true" : "false"}`, what);
    if (body) {
      notify(`${what}: run ${body.status || "queued"}.`, false, body.runId ? runLink(body.runId) : null);
      refresh();
    }
  }

  async function cancelRun(runId) {
    if (!window.confirm(`Cancel run ${runId}?`)) return;
    const body = await post(`/api/v1/runs/${encodeURIComponent(runId)}/cancel`, "Cancelling the run");
    if (body) {
      notify("The run is cancelled.", false, runLink(runId));
      state.runDetails.delete(runId);
      refresh();
    }
  }

  async function retryRun(runId) {
    const body = await post(`/api/v1/runs/${encodeURIComponent(runId)}/retry`,
      "Retrying from the failed step");
    if (body) {
      notify(`Rerun from ${body.rerunFrom || "the failed step"}: run ${body.status || "running"}.`,
        false, runLink(runId));
      state.runDetails.delete(runId);
      refresh();
    }
  }

  async function replay(topic, partition, offset) {
    const q = new URLSearchParams({topic, partition: String(partition), offset: String(offset)});
    const body = await post(`/api/v1/dead-letters/replay?${q}`,
      `Replaying dead letter ${partition}/${offset}`);
    if (body) {
      notify(`Dead letter ${partition}/${offset} replayed to ${body.replayedTo}` +
        (body.runId ? "; its run is reopened." : "."), false,
        body.runId ? runLink(body.runId) : null);
      if (body.runId) state.runDetails.delete(body.runId);
      refresh();
    }
  }

  async function activate(version) {
    if (!window.confirm(`Switch the live graph to ${version}?`)) return;
    const body = await post(`/api/v1/graphs/${encodeURIComponent(version)}/activate`,
      `Activating ${version}`);
    if (body) {
      notify(body.message || `${version} is live.`, false, body.runId ? runLink(body.runId) : null);
      refresh();
    }
  }

  /* ---- pieces shared by views ---------------------------------------------------------- */

  function stepLabel(s) {
    const max = state.workers[s.workerId] && state.workers[s.workerId].maxAttempts;
    const attempts = s.attempts > 1 || s.status === "retrying"
      ? ` · attempt ${s.attempts}${max ? ` of ${max}` : ""}` : "";
    return `${s.workerId}: ${s.status}, ${fmtMs(stepTime(s))}${attempts}`;
  }

  /* The name a bar has room for: odata-sync, virtual-entities, graph. */
  const shortName = (id) => String(id).replace(/-(worker|generator|builder)$/, "");

  /* A run's steps as bars on one time axis: scaleMs is the span the whole
   * width stands for (the longest run on the page), so bars compare. */
  function timeline(run, scaleMs) {
    const start = Date.parse(run.startedAt || run.createdAt);
    const steps = (run.steps || []).filter((s) => s.startedAt);
    const span = Math.max(scaleMs || 0, run.durationMs || 0, 1);
    const track = h("div", {class: "track", role: "img",
      "aria-label": steps.length ? steps.map(stepLabel).join("; ") : "no step started"});
    track.style.width = `${Math.max(2, Math.min(100, ((run.durationMs || 0) / span) * 100))}%`;
    const runSpan = Math.max(run.durationMs || 0, 1);
    for (const s of steps) {
      const left = ((Date.parse(s.startedAt) - start) / runSpan) * 100;
      const width = ((stepTime(s) || 0) / runSpan) * 100;
      const bar = h("span", {class: `bar s-${s.status}`, title: stepLabel(s)},
        shortName(s.workerId), s.attempts > 1 ? ` ×${s.attempts}` : "");
      bar.style.left = `${Math.max(0, Math.min(99, left))}%`;
      bar.style.width = `max(3px, ${Math.max(0, Math.min(100 - left, width))}%)`;
      track.append(bar);
    }
    return h("div", {class: "timeline"}, track);
  }

  function stepSummary(run) {
    return h("ul", {class: "steps-inline"}, (run.steps || []).map((s) =>
      h("li", {class: `s-${s.status}`, "data-worker": s.workerId},
        h("span", {class: "dot", "aria-hidden": "true"}),
        `${s.workerId} `,
        h("span", {class: "step-time"}, s.startedAt ? fmtMs(stepTime(s)) : s.status),
        s.attempts > 1 ? h("span", {class: "attempts"}, ` ×${s.attempts}`) : null)));
  }

  function table(headers, rows, cls) {
    return h("div", {class: "table-wrap"},
      h("table", {class: cls || ""},
        h("thead", {}, h("tr", {}, headers.map((t) => h("th", {scope: "col"}, t)))),
        h("tbody", {}, rows)));
  }

  /* A cell that also names its column, for the stacked layout on phones. */
  const td = (label, ...content) => h("td", {"data-label": label}, ...content);

  function countsText(data) {
    if (!data || typeof data !== "object") return "—";
    return Object.entries(data).map(([k, v]) =>
      `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") || "—";
  }

  function pager(el, offset, total, onMove) {
    const last = offset + PAGE >= total;
    replace(el,
      h("button", {type: "button", "data-key": "prev", disabled: offset === 0,
        onclick: () => onMove(Math.max(0, offset - PAGE))}, "← Newer"),
      h("span", {}, total ? `${offset + 1}–${Math.min(offset + PAGE, total)} of ${total}` : ""),
      h("button", {type: "button", "data-key": "next", disabled: last,
        onclick: () => onMove(offset + PAGE)}, "Older →"));
  }

  /* The runs with their steps; an ended run is fetched once. */
  async function withSteps(runs) {
    return Promise.all(runs.map(async (run) => {
      const known = state.runDetails.get(run.runId);
      if (known && known.status === run.status && known.finishedAt === run.finishedAt) return known;
      const full = (await get(`/api/v1/runs/${encodeURIComponent(run.runId)}`)).run;
      if (ENDED.has(full.status)) {
        if (state.runDetails.size > 500) state.runDetails.clear();
        state.runDetails.set(full.runId, full);
      }
      return full;
    }));
  }

  async function loadWorkers() {
    if (Object.keys(state.workers).length) return;
    state.workers = (await get("/api/v1/workers")).workers || {};
  }

  /* ---- view: now ---------------------------------------------------------------------------- */

  async function loadNow() {
    const [status, graphs, last] = await Promise.all([
      get("/api/v1/workers/pipeline/status"), get("/api/v1/graphs?limit=5"),
      get("/api/v1/runs?limit=5"), loadWorkers()]);
    const p = status.pipeline;
    learnSkew(p.activeRun);
    const lastRun = (last.runs || []).find((r) => ENDED.has(r.status));

    replace($("now-state"),
      h("p", {class: "big"}, p.isRunning ? badge("running") : badge("idle")),
      p.isRunning ? h("p", {}, "Active run ", runLink(p.activeRunId)) : null,
      lastRun ? h("p", {}, "Last run ", runLink(lastRun.runId, lastRun.runId.slice(0, 8)), " ",
        badge(lastRun.status), ` ${relative(lastRun.createdAt)} (${lastRun.trigger}), `,
        fmtMs(lastRun.durationMs))
        : h("p", {}, (last.runs || []).length ? "No run has ended yet." : "No run yet."),
      lastRun && lastRun.message ? h("p", {class: "muted"}, lastRun.message) : null,
      lastRun && RETRYABLE.has(lastRun.status) ? h("button", {type: "button",
        "data-key": "retry-last", onclick: () => retryRun(lastRun.runId)},
        "Retry from the failed step") : null);

    const live = (graphs.graphs || []).find((g) => g.active);
    replace($("now-graph"),
      live ? [
        h("p", {class: "big mono"}, live.version),
        h("dl", {class: "facts"},
          h("dt", {}, "Nodes"), h("dd", {}, String(live.nodeCount)),
          h("dt", {}, "Edges"), h("dd", {}, String(live.edgeCount)),
          h("dt", {}, "Dataset"), h("dd", {}, `v${live.datasetVersion}`),
          h("dt", {}, "Live since"), h("dd", {}, fmtTime(live.activatedAt || live.createdAt),
            ` (${relative(live.activatedAt || live.createdAt)})`))]
        : h("p", {}, graphs.activeVersion ? `graph:version is ${graphs.activeVersion}` :
          "No graph is live yet."),
      graphs.redisError ? h("p", {class: "error-text"}, graphs.redisError) : null);

    replace($("now-schedule"),
      p.nextScheduledRun ? h("dl", {class: "facts"},
        h("dt", {}, "Next run"), h("dd", {}, fmtTime(p.nextScheduledRun), ` (${relative(p.nextScheduledRun)})`),
        h("dt", {}, "Every"), h("dd", {}, fmtMs((p.scheduleIntervalS || 0) * 1000)),
        h("dt", {}, "Last tick"), h("dd", {}, fmtTime(p.lastScheduledRun)),
        h("dt", {}, "Virtual flights through"), h("dd", {}, p.virtualFlightsThrough || "—"))
        : h("p", {}, "No scheduled run (the schedule is off or has not ticked yet)."));

    replace($("now-active"), p.activeRun ? activeRun(p.activeRun, p.workers || [])
      : h("p", {}, "No run is active."));
    $("run-button").textContent = $("action-worker").value ? "Run the worker" : "Run the pipeline";
  }

  /* The run's steps, and the workers still to come as waiting. */
  function activeRun(run, workerIds) {
    const started = new Map((run.steps || []).map((s) => [s.workerId, s]));
    const ids = run.onlyWorker ? [run.onlyWorker] : workerIds;
    const all = [...started.values(), ...ids.filter((id) => !started.has(id)).map((id) =>
      ({workerId: id, status: "queued", attempts: 0}))];
    const steps = all.map((s) => {
      const w = state.workers[s.workerId] || {};
      const elapsed = stepTime(s);
      const limit = w.timeoutMs || 0;
      const pct = limit && elapsed !== null ? Math.min(100, (elapsed / limit) * 100) : 0;
      const bar = h("div", {class: `progress s-${s.status}`, role: "progressbar",
        "aria-label": `${s.workerId} time against its timeout`,
        "aria-valuemin": 0, "aria-valuemax": limit || 0, "aria-valuenow": elapsed || 0},
      h("span", {}));
      bar.firstChild.style.width = `${pct}%`;
      return h("li", {class: "active-step"},
        h("div", {class: "row"}, h("strong", {}, s.workerId), " ", badge(s.status),
          s.attempts ? ` attempt ${s.attempts}${w.maxAttempts ? ` of ${w.maxAttempts}` : ""}` : ""),
        bar,
        h("div", {class: "muted"}, s.startedAt ? `${fmtMs(elapsed)} of ${fmtMs(limit)} timeout`
          : "waiting"),
        s.error ? h("div", {class: "error-text"}, s.error) : null);
    });
    return [
      h("p", {}, runLink(run.runId), " ", badge(run.status), ` ${run.trigger}`,
        run.force ? " · force" : "", run.onlyWorker ? ` · only ${run.onlyWorker}` : "",
        ` · started ${fmtTime(run.startedAt || run.createdAt)} · ${fmtMs(run.durationMs)}`),
      h("ol", {class: "active-steps"}, steps),
      h("button", {type: "button", class: "danger", "data-key": "cancel-active",
        onclick: () => cancelRun(run.runId)}, "Cancel the run")];
  }

  /* ---- view: runs ---------------------------------------------------------------------------- */

  async function loadRuns() {
    const q = new URLSearchParams({limit: String(PAGE), offset: String(state.runsOffset)});
    if ($("filter-status").value) q.set("status", $("filter-status").value);
    if ($("filter-trigger").value) q.set("trigger", $("filter-trigger").value);
    const [list] = await Promise.all([get(`/api/v1/runs?${q}`), loadWorkers()]);
    const runs = await withSteps(list.runs || []);
    runs.forEach(learnSkew);
    const scale = Math.max(1, ...runs.map((r) => r.durationMs || 0));
    replace($("runs-list"), runs.length ? table(
      ["Run", "Status", "Trigger", "Started", "Duration", "Steps"],
      runs.map((run) => h("tr", {"data-run-id": run.runId},
        td("Run", runLink(run.runId, run.runId.slice(0, 8)),
          run.onlyWorker ? h("div", {class: "muted"}, `only ${run.onlyWorker}`) : null),
        td("Status", badge(run.status), run.force ? h("div", {class: "muted"}, "force") : null),
        td("Trigger", run.trigger),
        td("Started", fmtTime(run.startedAt || run.createdAt)),
        td("Duration", fmtMs(run.durationMs)),
        td("Steps", timeline(run, scale), stepSummary(run)))), "runs")
      : h("p", {}, "No run matches."));
    pager($("runs-pager"), state.runsOffset, list.total || 0, (o) => {
      state.runsOffset = o;
      refresh();
    });
  }

  /* ---- view: one run ---------------------------------------------------------------------------- */

  async function loadRun() {
    const id = state.runId;
    const [detail, graphs] = await Promise.all([
      get(`/api/v1/runs/${encodeURIComponent(id)}`), get("/api/v1/graphs?limit=100"), loadWorkers()]);
    const run = detail.run;
    learnSkew(run);
    $("h-run").textContent = `Run ${run.runId}`;
    const graph = (graphs.graphs || []).find((g) => g.version === run.graphVersion);
    replace($("run-detail"),
      h("dl", {class: "facts wide"},
        h("dt", {}, "Status"), h("dd", {}, badge(run.status)),
        h("dt", {}, "Trigger"), h("dd", {}, run.trigger, run.force ? " (force)" : "",
          run.onlyWorker ? ` · only ${run.onlyWorker}` : ""),
        h("dt", {}, "Created"), h("dd", {}, fmtTime(run.createdAt)),
        h("dt", {}, "Started"), h("dd", {}, fmtTime(run.startedAt)),
        h("dt", {}, "Finished"), h("dd", {}, fmtTime(run.finishedAt)),
        h("dt", {}, "Duration"), h("dd", {}, fmtMs(run.durationMs)),
        h("dt", {}, "Dataset"), h("dd", {}, run.datasetVersion ? `v${run.datasetVersion}` : "—"),
        h("dt", {}, "Graph"), h("dd", {class: "mono"}, run.graphVersion || "—"),
        h("dt", {}, "Message"), h("dd", {}, run.message || "—")),
      h("div", {class: "buttons"},
        ENDED.has(run.status) ? null : h("button", {type: "button", class: "danger",
          "data-key": "cancel", onclick: () => cancelRun(run.runId)}, "Cancel the run"),
        RETRYABLE.has(run.status) ? h("button", {type: "button", "data-key": "retry",
          onclick: () => retryRun(run.runId)}, "Retry from the failed step") : null),
      h("h3", {}, "Timeline"),
      timeline(run, run.durationMs),
      h("h3", {}, "Steps"),
      table(["Worker", "Status", "Attempts", "Started", "Finished", "Time", "Processed", "Message"],
        (run.steps || []).map((s) => {
          const max = state.workers[s.workerId] && state.workers[s.workerId].maxAttempts;
          return h("tr", {"data-worker": s.workerId},
            td("Worker", h("strong", {}, s.workerId)),
            td("Status", badge(s.status)),
            td("Attempts", `${s.attempts}${max ? ` of ${max}` : ""}`),
            td("Started", fmtTime(s.startedAt)),
            td("Finished", fmtTime(s.finishedAt)),
            td("Time", h("span", {class: "step-time"}, s.startedAt ? fmtMs(stepTime(s)) : "—")),
            td("Processed", countsText(s.dataProcessed)),
            td("Message", s.message || "", s.error ? h("div", {class: "error-text"}, s.error) : null));
        }), "steps"),
      h("h3", {}, "Validation"),
      graph ? validation(graph.validation, "run")
        : h("p", {}, run.graphVersion ? `${run.graphVersion} is no longer kept.`
          : "This run built no graph."));
  }

  function validation(v, key) {
    if (!v || typeof v !== "object") return h("p", {}, "No validation report.");
    const issues = Array.isArray(v.issues) ? v.issues : [];
    return h("div", {class: "validation"},
      h("p", {}, `${v.errors || 0} error(s), ${v.warnings || 0} warning(s), ` +
        `${issues.length} finding(s)`),
      issues.length ? h("details", {"data-key": `val-${key}`},
        h("summary", {}, "Findings"),
        h("ul", {}, issues.map((i) => h("li", {},
          badge(i.severity), ` ${i.code}: ${i.count}`,
          Array.isArray(i.samples) && i.samples.length
            ? h("ul", {class: "muted"}, i.samples.map((s) => h("li", {}, String(s)))) : null))))
        : null);
  }

  /* ---- view: dead letters ------------------------------------------------------------------------- */

  async function loadDeadLetters() {
    const body = await get(`/api/v1/dead-letters?limit=${PAGE}&offset=${state.dlOffset}`);
    showDeadLetterCount(body.total);
    const items = body.deadLetters || [];
    replace($("dl-list"), items.length ? table(
      ["When", "Worker", "Error", "Run", "Event", ""],
      items.map((d) => {
        const hdr = d.headers || {};
        const runId = d.value && typeof d.value === "object" ? d.value.runId : null;
        const key = `${d.partition}-${d.offset}`;
        return h("tr", {"data-offset": d.offset, "data-partition": d.partition},
          td("When", d.timestamp > 0 ? fmtTime(new Date(d.timestamp).toISOString()) : "—",
            h("div", {class: "muted mono"}, `${d.partition}/${d.offset}`)),
          td("Worker", hdr["x-worker"] || "—",
            hdr["x-attempt"] ? h("div", {class: "muted"}, `attempt ${hdr["x-attempt"]}`) : null),
          td("Error", h("span", {class: "error-text"}, d.error || "—"),
            h("div", {class: "muted mono"}, d.originalTopic || "no original topic")),
          td("Run", runId ? runLink(String(runId), String(runId).slice(0, 8)) : "—"),
          td("Event", h("details", {"data-key": `dl-${key}`},
            h("summary", {}, "Headers and value"),
            h("dl", {class: "facts"}, Object.entries(hdr).flatMap(([k, v]) =>
              [h("dt", {class: "mono"}, k), h("dd", {class: "mono"}, v === null ? "null" : String(v))])),
            h("pre", {}, typeof d.value === "string" ? d.value : JSON.stringify(d.value, null, 2)))),
          td("", h("button", {type: "button", class: "replay", "data-key": `replay-${key}`,
            disabled: !d.originalTopic,
            onclick: () => replay(body.topic, d.partition, d.offset)}, "Replay")));
      }), "dead-letters")
      : h("p", {}, "The dead-letter topic is empty."));
    pager($("dl-pager"), state.dlOffset, body.total || 0, (o) => {
      state.dlOffset = o;
      refresh();
    });
  }

  function showDeadLetterCount(total) {
    const el = $("dl-count");
    el.textContent = total ? String(total) : "";
    el.hidden = !total;
  }

  /* ---- view: graph versions ------------------------------------------------------------------------ */

  async function loadGraphs() {
    const body = await get("/api/v1/graphs?limit=100");
    const graphs = body.graphs || [];
    replace($("graphs-list"),
      body.redisError ? h("p", {class: "error-text"}, `Redis: ${body.redisError}`) : null,
      graphs.length ? table(
        ["Version", "Status", "Dataset", "Nodes", "Edges", "Built in", "Redis", "Created", "Validation", ""],
        graphs.map((g) => h("tr", {"data-version": g.version},
          td("Version", h("span", {class: "mono"}, g.version), g.active ? [" ", badge("live")] : null),
          td("Status", badge(g.status),
            g.keysPresent === false ? h("div", {class: "error-text"}, "keys gone from Redis") : null),
          td("Dataset", g.datasetVersion ? `v${g.datasetVersion}` : "—"),
          td("Nodes", String(g.nodeCount ?? "—")),
          td("Edges", String(g.edgeCount ?? "—")),
          td("Built in", fmtMs(g.buildMs)),
          td("Redis", fmtBytes(g.redisBytes)),
          td("Created", fmtTime(g.createdAt), h("div", {class: "muted"}, relative(g.createdAt))),
          td("Validation", validation(g.validation, g.version),
            g.error ? h("div", {class: "error-text"}, g.error) : null),
          td("", g.active ? null : h("button", {type: "button", "data-key": `activate-${g.version}`,
            disabled: g.keysPresent === false, onclick: () => activate(g.version)},
          "Roll back to this")))), "graphs")
        : h("p", {}, "No graph version is kept yet."));
  }

  /* ---- routing and polling ----------------------------------------------------------------------------- */

  const loaders = {
    "now": loadNow, "runs": loadRuns, "run": loadRun,
    "dead-letters": loadDeadLetters, "graphs": loadGraphs,
  };

  function route() {
    let hash = location.hash.replace(/^#/, "");
    try {
      hash = decodeURIComponent(hash);
    } catch (e) {
      hash = "now"; /* a malformed address: start from the overview */
    }
    if (hash.startsWith("run/")) {
      state.view = "run";
      state.runId = hash.slice(4);
    } else {
      state.view = loaders[hash] && hash !== "run" ? hash : "now";
    }
    for (const section of document.querySelectorAll(".view")) {
      section.hidden = section.id !== `view-${state.view}`;
    }
    for (const a of document.querySelectorAll("nav a")) {
      const current = a.dataset.view === state.view || (state.view === "run" && a.dataset.view === "runs");
      if (current) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    refresh();
  }

  let timer = null;
  let busy = false;
  let again = false;

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    clearTimeout(timer);
    const view = state.view;
    try {
      const dl = view === "dead-letters" ? null : get("/api/v1/dead-letters?limit=1");
      await loaders[view]();
      if (dl) showDeadLetterCount((await dl).total);
      $("offline").hidden = true;
      $("updated").textContent = `updated ${fmtTime(new Date().toISOString()).slice(11)}`;
    } catch (e) {
      const box = $("offline");
      box.textContent = e instanceof ApiError
        ? `The orchestrator answered ${e.status}: ${e.message}`
        : `The orchestrator does not answer (${e.message}); trying again.`;
      box.hidden = false;
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      } else if (!document.hidden) {
        timer = setTimeout(refresh, POLL_MS);
      }
    }
  }

  /* ---- wiring --------------------------------------------------------------------------------------------- */

  function start() {
    keepToken(token, token !== null);
    $("actions").addEventListener("submit", (e) => {
      e.preventDefault();
      runPipeline($("action-worker").value, $("action-force").checked);
    });
    $("action-worker").addEventListener("change", () => {
      $("run-button").textContent = $("action-worker").value ? "Run the worker" : "Run the pipeline";
    });
    $("runs-filter").addEventListener("change", () => {
      state.runsOffset = 0;
      refresh();
    });
    $("runs-filter").addEventListener("submit", (e) => e.preventDefault());
    $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
    $("token-button").addEventListener("click", async () => {
      const given = await askToken(token ? "A token is set; give another one to replace it."
        : "Actions need the token when the orchestrator has API_TOKEN set.");
      if (given) notify("The token will be sent with every action.", false);
    });
    $("token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = $("token-input").value.trim();
      if (!value) return;
      keepToken(value, $("token-remember").checked);
      closeToken(value);
    });
    $("token-cancel").addEventListener("click", () => closeToken(null));
    $("token-forget").addEventListener("click", () => {
      keepToken(null, false);
      closeToken(null);
      notify("The token is forgotten.", false);
    });
    $("token-dialog").addEventListener("close", () => closeToken(null));
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
    });
    window.addEventListener("hashchange", route);
    route();
  }

  start();
})();
