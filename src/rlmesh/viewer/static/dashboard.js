// The rlmesh evaluation dashboard: polls /state.json and draws tiles, the plot, events and
// the summary. Plain DOM, no dependencies. Text from the run (addresses, messages) is only
// ever set as textContent, never parsed as HTML.
"use strict";

const WAIT_MS = 250;  // the server holds each poll this long (until the run ends)...
const PAUSE_MS = 150; // ...and the page waits this long before the next one
const SVG = "http://www.w3.org/2000/svg";
const tiles = new Map(); // slot -> {root, img, shown, pending, seen, fields}
let stopped = false;
let polls = 0;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(value, digits) {
  if (value === null || value === undefined) return "-";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(digits === undefined ? 2 : digits);
}

function makeTile(slot) {
  const root = el("div", "tile");
  root.dataset.slot = String(slot);
  root.dataset.framesSeen = "0";
  root.dataset.frameVersion = "0";
  const screen = el("div", "screen", "no frame yet");
  const img = el("img");
  img.alt = "latest frame of endpoint " + slot;
  const address = el("div", "address");
  const numbers = el("div", "numbers");
  const fields = {address: address, episode: el("span"), step: el("span"), ret: el("span"),
                  status: el("div", "status")};
  numbers.append(fields.episode, fields.step, fields.ret);
  root.append(screen, address, numbers, fields.status);
  const entry = {root: root, img: img, screen: screen, shown: 0, pending: false, seen: 0,
                 fields: fields};
  img.addEventListener("load", () => {
    entry.pending = false;
    root.dataset.frameVersion = String(entry.shown);
    entry.seen += 1;
    root.dataset.framesSeen = String(entry.seen);
    if (!img.parentNode) { screen.textContent = ""; screen.append(img); }
  });
  img.addEventListener("error", () => { entry.pending = false; });
  document.getElementById("tiles").append(root);
  tiles.set(slot, entry);
  return entry;
}

function drawTile(tile) {
  const entry = tiles.get(tile.slot) || makeTile(tile.slot);
  entry.root.dataset.status = tile.status;
  entry.root.dataset.endpoint = tile.endpoint;
  entry.fields.address.textContent = tile.endpoint;
  entry.fields.episode.textContent = "episode " + fmt(tile.episode) +
    (tile.seed === null ? "" : " (seed " + tile.seed + ")");
  entry.fields.step.textContent = "step " + fmt(tile.step);
  entry.fields.ret.textContent = "return " + fmt(tile["return"]);
  entry.fields.status.textContent = tile.status + ", " + tile.finished + " episodes done";
  if (tile.frame > entry.shown && !entry.pending) {
    entry.pending = true;
    entry.shown = tile.frame;
    entry.img.src = "/frame.png?endpoint=" + tile.slot + "&v=" + tile.frame;
  }
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const key in attrs) node.setAttribute(key, String(attrs[key]));
  return node;
}

function drawPlot(state) {
  const plot = document.getElementById("plot");
  const W = 640, H = 260, L = 48, R = 12, T = 10, B = 28;
  const points = state.episodes.filter((e) => typeof e.reward === "number");
  const xOf = (e) => (e.seed === null || e.seed === undefined ? e.index : e.seed);
  const band = state.band;
  plot.replaceChildren();
  plot.dataset.points = String(points.length);
  if (!points.length) return;
  const xs = points.map(xOf);
  const ys = points.map((e) => e.reward).concat(band.map((b) => b.lo), band.map((b) => b.hi))
    .filter((v) => typeof v === "number");
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const sy = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  plot.append(svg("line", {x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis"}));
  plot.append(svg("line", {x1: L, y1: T, x2: L, y2: H - B, class: "axis"}));
  for (const [y, label] of [[y0, fmt(y0)], [y1, fmt(y1)]]) {
    const tick = svg("text", {x: L - 4, y: sy(y) + 3, "text-anchor": "end", class: "tick"});
    tick.textContent = label;
    plot.append(tick);
  }
  for (const [x, label] of [[x0, "seed " + fmt(x0, 0)], [x1, fmt(x1, 0)]]) {
    const tick = svg("text", {x: sx(x), y: H - 8, "text-anchor": "middle", class: "tick"});
    tick.textContent = label;
    plot.append(tick);
  }
  const usable = band.filter((b) => b.lo !== null && b.hi !== null && b.mean !== null);
  if (usable.length) {
    const upper = usable.map((b) => sx(b.x) + "," + sy(b.hi));
    const lower = usable.slice().reverse().map((b) => sx(b.x) + "," + sy(b.lo));
    plot.append(svg("polygon", {points: upper.concat(lower).join(" "), class: "band"}));
    plot.append(svg("polyline", {points: usable.map((b) => sx(b.x) + "," + sy(b.mean)).join(" "),
                                 class: "mean"}));
  }
  for (const e of points) {
    const dot = svg("circle", {cx: sx(xOf(e)), cy: sy(e.reward), r: 3.5, class: "point"});
    const title = svg("title", {});
    title.textContent = "seed " + fmt(e.seed) + ": return " + fmt(e.reward) + " (" +
      e.endpoint + ")";
    dot.append(title);
    plot.append(dot);
  }
}

function drawEvents(events) {
  const list = document.getElementById("events");
  list.replaceChildren();
  list.dataset.count = String(events.length);
  list.dataset.failures = String(events.filter((e) => e.kind === "endpoint_failed").length);
  list.dataset.replays = String(events.filter((e) => e.kind === "replay").length);
  for (const event of events.slice().reverse()) {
    const when = new Date(event.time * 1000).toLocaleTimeString();
    const message = event.message || "";
    const label = message.startsWith(event.kind) ? "" : event.kind + ": ";
    const item = el("li", "", when + "  " + label + message);
    item.dataset.kind = event.kind;
    list.append(item);
  }
}

function drawSummary(summary, planned) {
  const block = document.getElementById("summary");
  if (!summary) return;
  const stats = summary.stats || {};
  const rows = [
    ["episodes", fmt(summary.num_episodes) + " of " + fmt(planned)],
    ["mean return", fmt(stats.mean) + " \u00b1 " + fmt(stats.ci95) + " (95%)"],
    ["success rate", summary.success_rate === null ? "-" :
      fmt(summary.success_rate * 100, 1) + "%"],
    ["mean steps", fmt(summary.mean_steps, 1)],
    ["wall time", fmt(summary.wall_s, 1) + " s"],
    ["events", fmt(summary.events)],
    ["ended", summary.interrupted ? "interrupted" : (summary.complete ? "complete" : "incomplete")],
  ];
  const list = document.getElementById("summary-list");
  list.replaceChildren();
  for (const [name, value] of rows) list.append(el("dt", "", name), el("dd", "", value));
  block.hidden = false;
  document.body.dataset.done = "1";
}

function draw(state) {
  for (const tile of state.tiles) drawTile(tile);
  drawPlot(state);
  drawEvents(state.events);
  drawSummary(state.summary, state.planned);
  const progress = document.getElementById("progress");
  progress.dataset.finished = String(state.episodes.length);
  progress.textContent = state.episodes.length + " of " + state.planned + " episodes, " +
    state.tiles.length + " endpoints" + (state.summary ? " - finished" : "");
}

async function poll() {
  try {
    const reply = await fetch("/state.json?wait=" + (polls++ ? WAIT_MS : 0), {cache: "no-store"});
    const state = await reply.json();
    document.body.classList.remove("offline");
    draw(state);
    if (state.summary) stopped = true; // the final state stays on the page
  } catch (err) {
    document.body.classList.add("offline");
    document.getElementById("progress").textContent = "the run's dashboard is not answering";
  }
  if (!stopped) setTimeout(poll, PAUSE_MS);
}

poll();
