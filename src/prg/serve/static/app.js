// The PRG web page: one scene (a demo scene or an image of your own) and an instruction -> /v1/predict/stream,
// shown as it arrives: the retrieved documents, the answer word by word, then the cited rules, the grasps drawn
// over the image and the 6-DoF poses. Plain browser JavaScript: no build step, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);

// One colour per [POSE], in answer order; chosen to stay apart for common colour-vision deficiencies (Okabe-Ito).
const POSE_COLOURS = ["#e69f00", "#56b4e9", "#009e73", "#f0e442", "#0072b2", "#d55e00", "#cc79a7"];

const state = {
  scenes: new Map(), // id -> the scene as /v1/scenes lists it
  input: null, // {image: Blob, imageName, depth: Blob | null, depthName, label}: what the next request sends
  selection: 0, // bumped on every new pick, so a slow scene download cannot overwrite a later pick
  result: null, // the last PRGResult, kept to redraw the overlay when the image changes size
  controller: null, // aborts a request still streaming when another is sent
  imageUrl: null,
  ready: false,
};

// -- small helpers ------------------------------------------------------------------------------------------

function authHeaders() {
  // the key lives in the input only: never written to storage, so closing the tab forgets it
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "type" || k === "style") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function fmt(x, digits) {
  return Number.isFinite(x) ? x.toFixed(digits) : "–";
}

function setAppState(s) {
  $("app").dataset.state = s;
}

function setStatus(text) {
  $("run-status").textContent = text;
}

// -- errors: the server's own message, whatever the path it came by -------------------------------------------

async function errorFrom(resp) {
  // a 4xx/5xx from PRG is {"error": {code, message, field}}; a proxy in front may answer with anything else
  const text = await resp.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error) return { status: resp.status, ...body.error };
  } catch (_) {
    /* not JSON: shown as text below */
  }
  return { status: resp.status, code: "http_" + resp.status, message: text.slice(0, 500) || resp.statusText };
}

function showError(err) {
  const where = err.field ? ` (field: ${err.field})` : "";
  const status = err.status ? `HTTP ${err.status} · ` : "";
  $("error-title").textContent = `${status}${err.code || "error"}${where}`;
  $("error-message").textContent = err.message || "Something went wrong.";
  $("error").hidden = false;
  setAppState("error");
}

function hideError() {
  $("error").hidden = true;
  $("error-title").textContent = "";
  $("error-message").textContent = "";
}

// -- readiness ------------------------------------------------------------------------------------------------

async function pollReady() {
  const badge = $("ready");
  let delay = 1000;
  try {
    const resp = await fetch("readyz", { cache: "no-store" });
    const body = await resp.json();
    if (body.ready) {
      const bits = [body.preset && `${body.preset} model`, body.retrieval ? `${body.k_docs} documents` : "no index"];
      badge.textContent = "Ready · " + bits.filter(Boolean).join(" · ");
      badge.dataset.ready = "true";
      state.ready = true;
      $("submit").disabled = false;
      loadScenes(); // prg serve makes the demo scenes while the model loads: list them now they exist
      return;
    }
    if (body.error) {
      badge.textContent = "The model failed to load: " + body.error;
      badge.dataset.ready = "failed";
      return; // the server stays up to say so, but it will not recover by itself
    }
    badge.textContent = "Loading the model…";
  } catch (_) {
    badge.textContent = "Cannot reach the server; trying again…";
    delay = 2000;
  }
  badge.dataset.ready = "false";
  setTimeout(pollReady, delay);
}

// -- scenes and images ----------------------------------------------------------------------------------------

async function loadScenes() {
  const note = $("scene-note");
  let resp;
  try {
    resp = await fetch("v1/scenes", { headers: authHeaders(), cache: "no-store" });
  } catch (e) {
    note.textContent = "Cannot list the demo scenes: " + e.message;
    return;
  }
  if (resp.status === 401) {
    note.textContent = "This server needs an API key to list its demo scenes: enter it below.";
    return;
  }
  if (!resp.ok) {
    note.textContent = "Cannot list the demo scenes: " + (await errorFrom(resp)).message;
    return;
  }
  const scenes = await resp.json();
  const select = $("scene");
  const keep = select.value;
  state.scenes = new Map(scenes.map((s) => [s.id, s]));
  select.replaceChildren(select.options[0]);
  for (const s of scenes) {
    const targets = s.targets.length ? ` · ${s.targets.join(", ")}` : "";
    const label = `${s.id} · ${s.industry.replace(/_/g, " ")}${targets}`;
    select.append(el("option", { value: s.id, text: label }));
  }
  if (state.scenes.has(keep)) select.value = keep;
  note.textContent = scenes.length
    ? `${scenes.length} demo scenes, with depth and intrinsics.`
    : "This server offers no demo scenes (prg serve --scenes DATASET).";
}

async function fetchBlob(url) {
  const resp = await fetch(url, { headers: authHeaders() });
  if (!resp.ok) throw await errorFrom(resp);
  return resp.blob();
}

async function pickScene(id) {
  const token = ++state.selection;
  const scene = state.scenes.get(id);
  if (!scene) return;
  hideError();
  $("scene-note").textContent = `Loading ${id}…`;
  try {
    // fetched rather than put in <img src>: the bearer key has to travel with the request
    const [image, depth] = await Promise.all([fetchBlob(scene.image), scene.depth ? fetchBlob(scene.depth) : null]);
    if (token !== state.selection) return;
    // names without a suffix: the server then tells PNG, TIFF and .npy depth apart by their first bytes (a
    // dataset may hold any of them, and the scene route labels every file image/png)
    setInput({ image, imageName: id, depth, depthName: depth ? `${id}-depth` : "", label: id });
    $("instruction").value = scene.instruction;
    const k = scene.intrinsics || {};
    for (const name of ["fx", "fy", "cx", "cy"]) $(name).value = k[name] ?? "";
    $("depth-scale").value = scene.depth_scale ?? 0.001;
    $("depth-file").value = "";
    $("depth-note").textContent = depth ? `Depth: the scene's own (${id}).` : "This scene has no depth.";
    $("scene-note").textContent = `Scene ${id}: ${scene.split} split, targets: ${scene.targets.join(", ") || "none"}.`;
  } catch (err) {
    if (token !== state.selection) return;
    $("scene-note").textContent = "";
    showError(err.code ? err : { code: "scene", message: String(err.message || err) });
  }
}

function pickFile(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    showError({ code: "not_an_image", message: `${file.name} is not an image (${file.type}).` });
    return;
  }
  state.selection++;
  hideError();
  $("scene").value = "";
  // the demo scene's camera does not describe another picture: the user gives depth and intrinsics anew
  for (const name of ["fx", "fy", "cx", "cy"]) $(name).value = "";
  $("depth-note").textContent = "No depth yet.";
  $("scene-note").textContent = `Your image: ${file.name}.`;
  setInput({ image: file, imageName: file.name, depth: null, depthName: "", label: file.name });
}

function setInput(input) {
  state.input = input;
  state.result = null;
  if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
  state.imageUrl = URL.createObjectURL(input.image);
  const img = $("scene-image");
  img.src = state.imageUrl;
  img.alt = `The scene: ${input.label}`;
  $("overlay").dataset.empty = "false";
  clearOverlay();
}

// -- the request ----------------------------------------------------------------------------------------------

function requestOptions() {
  const opts = { instruction: $("instruction").value };
  const k = ["fx", "fy", "cx", "cy"].map((n) => $(n).value.trim());
  if (k.every((v) => v !== "")) {
    const [fx, fy, cx, cy] = k.map(Number);
    opts.intrinsics = { fx, fy, cx, cy };
  } else if (k.some((v) => v !== "")) {
    // half a camera model: sent as given, so the server names what is missing
    opts.intrinsics = Object.fromEntries(["fx", "fy", "cx", "cy"].flatMap((n, i) => (k[i] ? [[n, Number(k[i])]] : [])));
  }
  const scale = $("depth-scale").value.trim();
  if (scale !== "") opts.depth_scale = Number(scale);
  return opts;
}

function buildForm() {
  const form = new FormData();
  form.append("image", state.input.image, state.input.imageName || "image");
  const ownDepth = $("depth-file").files[0];
  if (ownDepth) form.append("depth", ownDepth, ownDepth.name);
  else if (state.input.depth) form.append("depth", state.input.depth, state.input.depthName);
  form.append("request", JSON.stringify(requestOptions()));
  return form;
}

// Server-sent events over a POST: EventSource can only GET, so the stream is read and split here. An event is
// a block of "field: value" lines ended by a blank line; "data" lines are joined with newlines.
function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return { event, data: data.join("\n") };
}

async function* readEvents(resp) {
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      if (block.trim()) yield parseEvent(block);
    }
  }
  if (buf.trim()) yield parseEvent(buf);
}

async function submit(ev) {
  ev.preventDefault();
  hideError();
  if (!state.input) {
    showError({ code: "no_image", message: "Pick a demo scene or choose an image first." });
    return;
  }
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  clearResult();
  setAppState("running");
  $("submit").disabled = true;
  const answer = $("answer");
  answer.dataset.state = "waiting";
  answer.setAttribute("aria-busy", "true");
  answer.textContent = "";
  const t0 = performance.now();
  setStatus("Sending…");
  let finished = false;
  try {
    const resp = await fetch("v1/predict/stream", {
      method: "POST",
      body: buildForm(),
      headers: authHeaders(),
      signal: controller.signal,
    });
    if (!resp.ok) {
      showError(await errorFrom(resp));
      finished = true;
      return;
    }
    setStatus("Retrieving documents…");
    for await (const { event, data } of readEvents(resp)) {
      const body = JSON.parse(data);
      if (event === "retrieved") {
        renderRetrieved(body.documents, []);
        setStatus("Answering…");
      } else if (event === "token") {
        answer.dataset.state = "streaming";
        answer.textContent += body.text;
      } else if (event === "result") {
        renderResult(body);
        setStatus(`Done in ${((performance.now() - t0) / 1000).toFixed(1)} s.`);
        setAppState("done");
        finished = true;
      } else if (event === "error") {
        showError(body.error);
        finished = true;
      }
    }
    if (!finished) {
      showError({ code: "stream_ended", message: "The stream ended before the result (the connection was lost?)." });
      finished = true;
    }
  } catch (err) {
    if (err.name === "AbortError") return; // a newer request replaced this one
    showError({ code: "network", message: `Cannot reach the server: ${err.message}` });
    finished = true;
  } finally {
    if (state.controller === controller) {
      state.controller = null;
      $("submit").disabled = !state.ready;
      answer.setAttribute("aria-busy", "false");
      if (answer.dataset.state !== "done") answer.dataset.state = answer.textContent ? "partial" : "empty";
      if ($("app").dataset.state === "error") setStatus("Failed.");
    }
  }
}

// -- rendering the result -------------------------------------------------------------------------------------

function clearResult() {
  state.result = null;
  $("citations").replaceChildren();
  $("retrieved").replaceChildren();
  $("timings").replaceChildren();
  $("poses").tBodies[0].replaceChildren();
  $("clause").hidden = true;
  $("seen-tools").hidden = true;
  clearOverlay();
}

function renderRetrieved(docs, seenTools) {
  const list = $("retrieved");
  list.replaceChildren(
    ...docs.map((d) =>
      el(
        "li",
        { class: "doc", "data-id": d.id },
        el(
          "details",
          {},
          el(
            "summary",
            {},
            el("span", { class: "doc-id", text: d.id }),
            ` ${d.title || ""} `,
            el("span", { class: "score", text: `score ${fmt(d.score, 3)}` }),
          ),
          el("p", { class: "doc-text", text: d.text }),
        ),
      ),
    ),
  );
  const seen = $("seen-tools");
  seen.hidden = !seenTools.length;
  seen.textContent = seenTools.length ? `The scene tagger saw: ${seenTools.join(", ")}.` : "";
}

function escapeRegex(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// The answer as text with its citations as buttons and its [POSE] tokens as numbered, coloured marks. The ids
// are those the server resolved (pipeline.resolve_citations), so the page links exactly what the result cites.
function answerNodes(answer, citations, unresolved) {
  const targets = [];
  for (const c of citations) targets.push({ pattern: escapeRegex(c.id), kind: "cite", citation: c });
  for (const c of citations) {
    // a document cited without a clause stands for its best chunk; not when a clause follows ("EP-1 §9")
    if (c.doc_id !== c.id) targets.push({ pattern: escapeRegex(c.doc_id) + "(?!\\s*§)", kind: "cite", citation: c });
  }
  for (const u of unresolved) {
    targets.push({ pattern: u.split(/\s*§\s*/).map(escapeRegex).join("\\s*§\\s*"), kind: "unresolved", id: u });
  }
  targets.push({ pattern: "\\[POSE\\]", kind: "pose" });
  // longest first, so "EP-SAF-004 §4.2" wins over "EP-SAF-004" at the same place
  targets.sort((a, b) => b.pattern.length - a.pattern.length);
  const re = new RegExp(targets.map((t) => `(${t.pattern})`).join("|"), "g");
  const nodes = [];
  let last = 0;
  let pose = 0;
  for (const m of answer.matchAll(re)) {
    if (m.index > last) nodes.push(document.createTextNode(answer.slice(last, m.index)));
    const t = targets[m.slice(1).findIndex((g) => g !== undefined)];
    if (t.kind === "cite") {
      nodes.push(citationButton(t.citation, "cite", m[0]));
    } else if (t.kind === "unresolved") {
      const title = "cited, but not among the retrieved documents";
      nodes.push(el("span", { class: "cite-unresolved", text: m[0], title }));
    } else {
      pose += 1;
      nodes.push(poseTag(pose, `[POSE ${pose}]`));
    }
    last = m.index + m[0].length;
  }
  if (last < answer.length) nodes.push(document.createTextNode(answer.slice(last)));
  return nodes;
}

// [POSE n] (1-based) in its overlay colour, in the answer and the pose table alike
function poseTag(n, text) {
  const colour = POSE_COLOURS[(n - 1) % POSE_COLOURS.length];
  return el("span", { class: "pose-tag", "data-pose": String(n), style: `--pose:${colour}`, text });
}

function citationButton(c, cls, text) {
  return el("button", {
    type: "button",
    class: cls,
    "data-citation": c.id,
    "aria-controls": "clause",
    "aria-expanded": "false",
    text,
  });
}

function showClause(id) {
  const c = (state.result?.citations || []).find((x) => x.id === id);
  const box = $("clause");
  if (!c) return;
  for (const b of document.querySelectorAll("[data-citation]")) {
    b.setAttribute("aria-expanded", String(b.dataset.citation === id));
  }
  box.dataset.citation = id;
  $("clause-title").textContent = c.title ? `${c.id} — ${c.title}` : c.id;
  $("clause-text").textContent = c.text;
  box.hidden = false;
}

function renderResult(res) {
  state.result = res;
  const answer = $("answer");
  answer.replaceChildren(...answerNodes(res.answer, res.citations, res.unresolved_citations));
  answer.dataset.state = "done";

  const list = $("citations");
  list.replaceChildren(
    ...res.citations.map((c) => el("li", {}, citationButton(c, "citation", c.title ? `${c.id} — ${c.title}` : c.id))),
    ...res.unresolved_citations.map((u) =>
      el("li", { class: "unresolved", text: `${u}: cited, but not among the retrieved documents` }),
    ),
  );
  if (!list.children.length) list.append(el("li", { class: "note", text: "The answer cites no rule." }));

  renderRetrieved(res.retrieved, res.seen_tools || []);
  renderPoses(res);
  const dl = $("timings");
  dl.replaceChildren();
  for (const [k, v] of Object.entries(res.timings_ms)) {
    const label = k.replace(/_/g, " ");
    const value = k === "batch_size" ? String(v) : `${fmt(v, 0)} ms`;
    dl.append(el("div", {}, el("dt", { text: label }), el("dd", { text: value })));
  }
  drawOverlay();
}

function renderPoses(res) {
  const body = $("poses").tBodies[0];
  body.replaceChildren();
  const frame = res.poses.find((p) => p)?.header?.frame_id;
  $("poses-caption").textContent = frame
    ? `Best grasp per [POSE], in the camera frame ${frame}.`
    : "Best grasp per [POSE], in the camera frame.";
  if (!res.poses.length) {
    const why = res.grasps.length ? "send depth and intrinsics with the image to get them" : "the answer has no [POSE]";
    body.append(el("tr", { class: "none" }, el("td", { colSpan: 7, text: `No poses: ${why}.` })));
    return;
  }
  res.poses.forEach((p, i) => {
    const head = el("th", { scope: "row" }, poseTag(i + 1, String(i + 1)));
    if (!p) {
      body.append(el("tr", { class: "pose", "data-pose": String(i + 1) }, head,
        el("td", { colSpan: 6, text: "No grasp, or no depth reading under it." })));
      return;
    }
    const { position: t, orientation: q } = p.pose;
    body.append(
      el("tr", { class: "pose", "data-pose": String(i + 1) }, head,
        el("td", { text: fmt(t.x, 3) }), el("td", { text: fmt(t.y, 3) }), el("td", { text: fmt(t.z, 3) }),
        el("td", { class: "quat", text: [q.x, q.y, q.z, q.w].map((v) => fmt(v, 3)).join(", ") }),
        el("td", { text: fmt(p.width * 1000, 1) }),
        el("td", { text: fmt(p.quality, 2) })),
    );
  });
}

// -- the grasp overlay ----------------------------------------------------------------------------------------

// The corners of a grasp rectangle in image pixels, as prg.grasp.rect.GraspRect.corners has them: the opening
// axis is (cos a, -sin a) (image y points down), p0 -> p1 and p2 -> p3 run along it, p1 -> p2 and p3 -> p0 are
// the jaw plates.
function corners(g) {
  const ux = (Math.cos(g.angle) * g.width) / 2;
  const uy = (-Math.sin(g.angle) * g.width) / 2;
  const nx = (Math.sin(g.angle) * g.height) / 2;
  const ny = (Math.cos(g.angle) * g.height) / 2;
  return [
    [g.x - ux - nx, g.y - uy - ny],
    [g.x + ux - nx, g.y + uy - ny],
    [g.x + ux + nx, g.y + uy + ny],
    [g.x - ux + nx, g.y - uy + ny],
  ];
}

function clearOverlay() {
  const canvas = $("grasp-canvas");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.grasps = "0";
  canvas.dataset.poses = "0";
  canvas.setAttribute("aria-label", "No grasps yet.");
}

function drawOverlay() {
  const res = state.result;
  const img = $("scene-image");
  const canvas = $("grasp-canvas");
  if (!res || !img.complete || !img.naturalWidth) return;
  // the canvas matches the image as displayed (times the screen's pixel ratio) rather than the image's own
  // pixels, so lines keep one thickness whether a 64 px or a 4000 px picture is shown
  const w = img.clientWidth;
  const h = img.clientHeight;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(w * dpr));
  canvas.height = Math.max(1, Math.round(h * dpr));
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const [iw, ih] = res.image_size;
  const sx = w / iw;
  const sy = h / ih;
  const px = ([x, y]) => [x * sx, y * sy];
  let count = 0;
  const described = [];

  const stroke = (a, b, colour, width, alpha) => {
    ctx.globalAlpha = alpha;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(...a);
    ctx.lineTo(...b);
    ctx.strokeStyle = "rgba(0,0,0,0.75)"; // a dark halo keeps the line visible on light and dark scenes
    ctx.lineWidth = width + 2;
    ctx.stroke();
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.stroke();
  };
  const drawGrasp = (g, colour, best) => {
    const c = corners(g).map(px);
    const width = best ? 2.5 : 1.25;
    const alpha = best ? 1 : 0.7;
    stroke(c[0], c[1], colour, width, alpha); // the opening edges
    stroke(c[2], c[3], colour, width, alpha);
    stroke(c[1], c[2], colour, width * 2, alpha); // the jaws
    stroke(c[3], c[0], colour, width * 2, alpha);
  };

  // the next-best grasps first, so the best ones lie on top
  res.grasps.forEach((gs, i) => {
    gs.slice(1).forEach((g) => drawGrasp(g, POSE_COLOURS[i % POSE_COLOURS.length], false));
    count += gs.length;
  });
  res.grasps.forEach((gs, i) => {
    if (!gs.length) {
      described.push(`[POSE ${i + 1}]: no grasp`);
      return;
    }
    const colour = POSE_COLOURS[i % POSE_COLOURS.length];
    const g = gs[0];
    drawGrasp(g, colour, true);
    const [cx, cy] = px([g.x, g.y]);
    ctx.globalAlpha = 1;
    ctx.beginPath();
    ctx.arc(cx, cy, 9, 0, 2 * Math.PI);
    ctx.fillStyle = colour;
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#000";
    ctx.stroke();
    ctx.fillStyle = "#000";
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(String(i + 1), cx, cy + 0.5);
    const deg = ((g.angle * 180) / Math.PI).toFixed(0);
    const where = `(${g.x.toFixed(0)}, ${g.y.toFixed(0)}) px`;
    described.push(`[POSE ${i + 1}]: best grasp at ${where}, ${deg}°, score ${fmt(g.score, 2)}`);
  });
  canvas.dataset.grasps = String(count);
  canvas.dataset.poses = String(res.grasps.length);
  canvas.setAttribute("aria-label", count ? `${count} grasps drawn. ${described.join("; ")}.` : "No grasps.");
}

// -- wiring ---------------------------------------------------------------------------------------------------

function init() {
  $("ask").addEventListener("submit", submit);
  $("scene").addEventListener("change", (e) => {
    if (e.target.value) pickScene(e.target.value);
  });
  $("image-file").addEventListener("change", (e) => pickFile(e.target.files[0]));
  $("depth-file").addEventListener("change", (e) => {
    const f = e.target.files[0];
    $("depth-note").textContent = f ? `Depth: ${f.name}.` : "No depth yet.";
  });
  $("api-key").addEventListener("change", () => {
    if (state.ready) loadScenes(); // a key typed after a 401 lets the scenes load
  });
  for (const target of [$("drop"), $("overlay")]) {
    target.addEventListener("dragover", (e) => {
      e.preventDefault();
      $("drop").dataset.active = "true";
    });
    target.addEventListener("dragleave", () => {
      $("drop").dataset.active = "false";
    });
    target.addEventListener("drop", (e) => {
      e.preventDefault();
      $("drop").dataset.active = "false";
      pickFile(e.dataTransfer.files[0]);
    });
  }
  // one handler for every citation button, those in the answer and those in the list
  document.addEventListener("click", (e) => {
    const b = e.target.closest("button[data-citation]");
    if (b) showClause(b.dataset.citation);
  });
  $("scene-image").addEventListener("load", drawOverlay);
  new ResizeObserver(() => drawOverlay()).observe($("scene-image"));
  pollReady();
}

init();
