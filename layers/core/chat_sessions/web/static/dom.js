// Small DOM and formatting helpers. Text from the API or the model only ever becomes text nodes
// (textContent), never markup.

export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** An element with attributes and children; strings become text nodes (never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export const PENCIL = "M4 20h4L19 9l-4-4L4 16zM14 6l4 4";
export const BIN = "M5 7h14M10 7V4h4v3M7 7l1 13h8l1-13M10 11v6M14 11v6";

export function icon(path) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const shape = document.createElementNS(ns, "path");
  shape.setAttribute("d", path);
  svg.append(shape);
  return svg;
}

/** The status line, a polite live region: what the page is doing, read to screen readers. */
export function say(text) {
  $("status").textContent = text;
}

export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString([], { month: "short", day: "numeric", year: "numeric" });
}

export function titleOf(session) {
  return (session && session.title) || "Untitled conversation";
}

export function pretty(value) {
  if (typeof value !== "string") return JSON.stringify(value, null, 2);
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}

/** Touch screens: Enter adds a new line and the Send button sends (no Shift key to hold). */
export const coarsePointer = matchMedia("(pointer: coarse)");

/** Enter without modifiers, outside an IME composition, on a device with a keyboard. */
export function isSend(event) {
  if (coarsePointer.matches || event.key !== "Enter" || event.isComposing) return false;
  return !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey;
}

// Re-rendering a list must not drop the focus to <body>. Items carry `data-key`, their controls
// `data-action`: the focus goes back to the same control of the same item, else to the item's
// first control, else (`byIndex`) to the first control of the item now at its place (its
// neighbour's "open", never its neighbour's "delete"), else to `fallback`.

/** Where the focus is inside `container`, to give back after re-rendering it. */
export function focusWithin(container) {
  const active = document.activeElement;
  if (!active || active === container || !container.contains(active)) return null;
  const item = active.closest("[data-key]");
  if (!item) return null;
  const items = [...container.querySelectorAll(":scope > [data-key]")];
  return { key: item.dataset.key, action: active.dataset.action, index: items.indexOf(item) };
}

export function restoreFocus(container, saved, { fallback = null, byIndex = false } = {}) {
  if (!saved || container.contains(document.activeElement)) return;
  const items = [...container.querySelectorAll(":scope > [data-key]")];
  const kept = items.find((node) => node.dataset.key === saved.key);
  let item = kept;
  if (!item && byIndex && items.length) item = items[Math.min(saved.index, items.length - 1)];
  const same = kept && saved.action && kept.querySelector(`[data-action="${saved.action}"]`);
  const target = same || (item && item.querySelector("button, textarea, input, select"));
  if (target) target.focus();
  else if (fallback) fallback.focus();
}
