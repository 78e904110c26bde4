// The conversation's list items: message bubbles, tool calls, other items and errors. Text is
// set with textContent (messages keep their line breaks with white-space: pre-wrap).

import { el, pretty } from "./dom.js";

export function bubble(role, text, { busy = false } = {}) {
  const who = role === "user" ? "You" : role === "assistant" ? "Assistant" : role || "Item";
  const body = el("div", { class: "text" });
  body.textContent = text;
  return el(
    "li",
    { class: `message ${role}`, "aria-busy": busy ? "true" : null },
    el("p", { class: "who", text: who }),
    body,
  );
}

/** A tool call, collapsed; `output` undefined while it runs. */
export function toolItem(name, args, output) {
  const running = output === undefined ? el("span", { class: "hint", text: " running…" }) : null;
  const code = el("code", { text: name || "(output)" });
  const summary = el("summary", {}, "Tool call ", code, running);
  const details = el("details", { class: "tool" }, summary);
  if (args !== null && args !== undefined) {
    const label = el("p", { class: "tool-label", text: "Arguments" });
    details.append(label, el("pre", { text: pretty(args) }));
  }
  const out = el("pre", { class: "tool-output", text: output === undefined ? "" : pretty(output) });
  details.append(el("p", { class: "tool-label", text: "Output" }), out);
  return el("li", { class: "message tool-item" }, details);
}

/** A running tool call's output arrived. */
export function toolDone(node, output) {
  node.querySelector(".tool-output").textContent = pretty(output);
  const running = node.querySelector("summary .hint");
  if (running) running.remove();
}

export function errorItem(text, retry) {
  return el(
    "li",
    { class: "message error-box", role: "alert" },
    el("p", { text }),
    retry ? el("button", { type: "button", onclick: retry }, "Retry") : null,
  );
}

/**
 * A stored message (GET .../messages): a bubble with its actions, a tool call with its output
 * (`outputs` by call id), or any other item as JSON. `actions`: {edit, regenerate} handlers, or
 * none while a turn runs.
 */
export function messageItem(message, outputs, { edit = null, regenerate = null } = {}) {
  const item = message.item || {};
  let node;
  if (message.type === "function_call") {
    const output = outputs.get(item.call_id);
    node = toolItem(item.name, item.arguments, output ? output.item.output : undefined);
  } else if (message.type === "function_call_output") {
    node = toolItem(null, null, item.output);
  } else if (message.type !== "message") {
    const json = el("pre", { text: JSON.stringify(item, null, 2) });
    const details = el("details", {}, el("summary", { text: message.type }), json);
    node = el("li", { class: "message other" }, details);
  } else {
    node = bubble(message.role, message.text);
    const actions = el("div", { class: "message-actions" });
    if (edit) {
      actions.append(action("edit", "Edit this message", "Edit", () => edit(node, message)));
    }
    if (regenerate) {
      actions.append(action("regenerate", "Regenerate the answer", "Regenerate", regenerate));
    }
    if (actions.childElementCount) node.append(actions);
  }
  node.dataset.seq = message.seq;
  node.dataset.key = `m${message.seq}`;
  return node;
}

function action(name, label, text, onclick) {
  const attrs = { type: "button", class: "link-button", "data-action": name, "aria-label": label };
  return el("button", { ...attrs, onclick }, text);
}
