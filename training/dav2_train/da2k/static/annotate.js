// The annotation page: one pair at a time; every answer goes to the server, which
// journals it before replying. The experts' votes arrive only with that reply.
"use strict";

let current = null;  // the pair on screen, or null
let busy = false;    // one request at a time, so answers keep their order

const $ = (id) => document.getElementById(id);

function show(state) {
  const p = state.progress;
  $("progress").textContent =
    `${p.done} done / ${p.left} left` + (p.skipped ? ` (${p.skipped} skipped)` : "") +
    ` · ${p.auto} labelled by the experts`;
  current = state.pair;
  $("error").textContent = state.error || "";
  $("done").hidden = current !== null;
  $("stage").hidden = current === null;
  $("output").textContent = state.output;
  if (current === null) return;
  const img = $("photo");
  img.src = `/api/image/${encodeURIComponent(current.id)}`;
  for (const name of ["point1", "point2"]) {
    const [row, col] = current[name];
    const marker = $(`marker-${name}`);
    // Pixel centres in percent of the image, so the markers follow any display size.
    marker.style.left = `${((col + 0.5) / current.width) * 100}%`;
    marker.style.top = `${((row + 0.5) / current.height) * 100}%`;
  }
}

function reveal(answered) {
  const said = answered.closer === "skip" ? "skipped" : `you: ${answered.closer.slice(-1)}`;
  const votes = answered.votes
    .map((v) => `${v.expert}: ${v.closer.slice(-1)} (margin ${v.margin.toFixed(3)})`)
    .join(", ");
  $("reveal").textContent = `last pair ${answered.id}: ${said}; experts said ${votes}`;
}

async function call(method, url, body) {
  if (busy) return;
  busy = true;
  try {
    const response = await fetch(url, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const state = await response.json();
    if (state.answered) reveal(state.answered);
    if ("undone" in state) {
      $("reveal").textContent = state.undone ? `undid ${state.undone}` : "nothing to undo";
    }
    show(state);
  } catch (err) {
    $("error").textContent = `server unreachable (${err}); answers so far are saved`;
  } finally {
    busy = false;
  }
}

function answer(closer) {
  if (current !== null) call("POST", "/api/answer", { pair: current.id, closer });
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-closer]");
  if (target) answer(target.dataset.closer);
  if (event.target.closest("#undo")) call("POST", "/api/undo");
});

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (key === "1") answer("point1");
  else if (key === "2") answer("point2");
  else if (key === "s") answer("skip");
  else if (key === "u") call("POST", "/api/undo");
});

call("GET", "/api/state");
