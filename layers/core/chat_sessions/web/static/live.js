// The turn streaming now, as it arrives: the user's bubble, the answer's text node (tokens are
// appended to it), tool calls, and a pending "…" while the assistant has said nothing yet. The
// bubble is aria-busy until the answer ends, so screen readers are not read every token.

import { $, el } from "./dom.js";
import { bubble, toolDone, toolItem } from "./items.js";

export function liveStart(turn, shownMessage) {
  $("live").replaceChildren();
  turn.live = { user: null, answer: null, pending: null, tools: new Map(), words: 0 };
  if (shownMessage) liveUser(turn, shownMessage);
  livePending(turn, true);
}

export function liveUser(turn, text) {
  if (turn.live.user) {
    turn.live.user.querySelector(".text").textContent = text;
    return;
  }
  turn.live.user = bubble("user", text);
  $("live").prepend(turn.live.user);
}

export function livePending(turn, on) {
  if (turn.live.pending) turn.live.pending.remove();
  turn.live.pending = null;
  if (on) {
    turn.live.pending = el(
      "li",
      { class: "message assistant pending", "aria-hidden": "true" },
      el("p", { class: "who", text: "Assistant" }),
      el("div", { class: "text dots", text: "…" }),
    );
    $("live").append(turn.live.pending);
  }
}

export function liveToken(turn, delta) {
  if (!turn.live.answer) {
    livePending(turn, false);
    turn.live.answer = bubble("assistant", "", { busy: true });
    turn.live.answer.classList.add("streaming");
    $("live").append(turn.live.answer);
  }
  turn.live.answer.querySelector(".text").append(delta);
}

export function liveToolCall(turn, data) {
  livePending(turn, false);
  liveEnd(turn);
  turn.live.answer = null; // text after a tool call goes in a new bubble
  const node = toolItem(data.name, data.arguments, undefined);
  turn.live.tools.set(data.call_id, node);
  $("live").append(node);
  livePending(turn, true);
}

export function liveToolOutput(turn, data) {
  const node = turn.live.tools.get(data.call_id);
  if (node) toolDone(node, data.output);
  else $("live").append(toolItem(null, null, data.output));
}

/** The answer stops streaming (done, failed, or a tool call comes). */
export function liveEnd(turn) {
  livePending(turn, false);
  const answer = turn.live.answer;
  if (!answer) return;
  answer.removeAttribute("aria-busy");
  answer.classList.remove("streaming");
}

/** What the status line (a live region) says when the answer completes: its size, not its
 * every token (the bubble was aria-busy while it streamed). */
export function liveSummary(turn) {
  const texts = [...$("live").querySelectorAll(".message.assistant:not(.pending) .text")];
  const words = texts.map((t) => t.textContent).join(" ").split(/\s+/).filter(Boolean).length;
  const tools = turn.live.tools.size;
  const parts = [];
  if (words) parts.push(`${words} word${words === 1 ? "" : "s"}`);
  if (tools) parts.push(`${tools} tool call${tools === 1 ? "" : "s"}`);
  return parts.length ? `The answer is complete: ${parts.join(", ")}.` : "The answer is complete.";
}
