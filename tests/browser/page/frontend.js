// The frontend's calls as the existing frontend makes them: plain fetch() with a bearer
// token, no If-None-Match of its own (the browser's HTTP cache revalidates), the next
// page from the Link header, and errors shown from the JSON error body.
"use strict";

document.getElementById("origin").textContent = `served from ${location.origin}`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function event(text, kind = "info") {
  const item = document.createElement("li");
  item.className = kind;
  item.innerHTML = text;
  document.getElementById("events").appendChild(item);
}

function render(rows) {
  const body = document.querySelector("#analyses tbody");
  body.replaceChildren(
    ...rows.map((row) => {
      const tr = document.createElement("tr");
      const created = new Date(row.timestamp);
      for (const [value, cls] of [
        [row.id, ""],
        [row.dance_type, ""],
        [row.status, row.status],
        [row.total_score ?? "", ""],
        [created.toISOString().slice(0, 16).replace("T", " "), ""],
      ]) {
        const td = document.createElement("td");
        td.textContent = String(value);
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      return tr;
    }),
  );
}

function call(base, path, token, init = {}) {
  const headers = { ...(init.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(new URL(path, base), { ...init, headers });
}

// A failed call as the user should see it: status, code, message, when to retry.
async function readableError(response) {
  let error = {};
  try {
    error = (await response.json()).error || {};
  } catch (_) {
    error = { code: "unreadable", message: "no JSON body" };
  }
  const shown = {
    status: response.status,
    code: error.code,
    message: error.message,
    retryAfter: response.headers.get("Retry-After"),
    requestId: response.headers.get("X-Request-ID"),
  };
  const retry = shown.retryAfter ? ` (Retry-After: ${shown.retryAfter} s)` : "";
  event(`<strong>${shown.status} ${shown.code}</strong>: ${shown.message}${retry}`, "error");
  return shown;
}

async function listAllPages(cfg) {
  const pages = [];
  let path = `/analyses?limit=${cfg.pageSize}`;
  while (path) {
    const response = await call(cfg.queryApi, path, cfg.token);
    const rows = await response.json();
    const link = response.headers.get("Link");
    const next = link && link.match(/<([^>]+)>;\s*rel="next"/);
    pages.push({
      status: response.status,
      ids: rows.map((row) => row.id),
      nextToken: response.headers.get("X-Next-Page-Token"),
      linkToken: next ? new URL(next[1], cfg.queryApi).searchParams.get("page_token") : null,
    });
    path = next ? next[1] : null;
  }
  event(`paged through ${pages.length} pages of ${cfg.pageSize} with the Link header`);
  return pages;
}

async function poll(cfg, times) {
  const seen = [];
  for (let i = 0; i < times; i += 1) {
    const response = await call(cfg.queryApi, "/analyses", cfg.token);
    const rows = await response.json();
    render(rows);
    seen.push({
      status: response.status,
      rows: rows.length,
      statuses: Object.fromEntries(rows.map((row) => [row.id, row.status])),
      etag: response.headers.get("ETag"),
    });
    await sleep(cfg.pollIntervalMs);
  }
  event(`polled GET /analyses ${times} times: statuses ${[...new Set(seen.map((p) => p.status))]}`);
  return seen;
}

async function create(cfg, key) {
  const response = await call(cfg.rerunApi, "/analyses", cfg.token, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": key },
    body: JSON.stringify({
      video_url: cfg.videoUrl,
      dance_type: "salsa",
      dancers: ["lead", "follow"],
      analysis_type: "couple",
    }),
  });
  const body = await response.json();
  const replayed = response.headers.get("Idempotent-Replayed") === "true";
  event(`created ${body.id} (${response.status}${replayed ? ", replayed" : ""}) at ` +
        `${response.headers.get("Location")}`);
  return { status: response.status, id: body.id, location: response.headers.get("Location"),
           replayed };
}

async function rerun(cfg, id) {
  const response = await call(cfg.rerunApi, `/analyses/${id}/rerun`, cfg.token, {
    method: "POST",
    headers: { "Idempotency-Key": crypto.randomUUID() },
  });
  if (!response.ok) return { status: response.status, error: await readableError(response) };
  const body = await response.json();
  event(`rerun of ${id} queued as generation ${body.generation} (${response.status})`);
  return { status: response.status, generation: body.generation };
}

window.runScenario = async (cfg) => {
  const result = { pages: await listAllPages(cfg) };
  result.quietPolls = await poll(cfg, cfg.quietPolls);

  const key = crypto.randomUUID();
  result.created = await create(cfg, key);
  result.createdAgain = await create(cfg, key);
  result.pollAfterCreate = await poll(cfg, 1);

  result.rerun = await rerun(cfg, cfg.rerunId);
  result.rerunBusy = await rerun(cfg, result.created.id);
  result.pollsAfterRerun = await poll(cfg, cfg.quietPolls);

  // Errors last: a 401 for the list URL would replace the list in the HTTP cache.
  const expired = await call(cfg.queryApi, "/analyses", cfg.expiredToken);
  result.unauthenticated = await readableError(expired);
  result.burst = [];
  for (let i = 0; i < cfg.burstMax; i += 1) {
    const response = await call(cfg.queryApi, "/analyses/not-there", cfg.burstToken);
    if (response.status !== 429) {
      result.burst.push(response.status);
      if (i === 0) await readableError(response);  // a 404 reads like any other error
      continue;
    }
    result.limited = await readableError(response);
    break;
  }
  return result;
};
