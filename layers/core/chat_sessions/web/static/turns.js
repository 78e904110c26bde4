// Chat turns: POST the message (Accept: text/event-stream, an Idempotency-Key a retry reuses),
// read its Server-Sent Events into the page, and re-attach to a turn whose stream broke
// (Last-Event-ID) or that runs while the page is (re)loaded (from its start). docs/chat.md,
// "Resumable streams", is the server's side.

import { api, authedFetch, chatUrl, errorOf, gone, messageOf, waitNote } from "./api.js";
import {
  followBottom,
  loadBranches,
  loadNewest,
  loadTail,
  openSession,
  renderHead,
  renderMessages,
  renderView,
  scrolledToBottom,
} from "./conversation.js";
import { $, enc, newKey, say, sleep } from "./dom.js";
import { errorItem } from "./items.js";
import * as live from "./live.js";
import { sseEvents } from "./sse.js";
import { patchSession, refreshSession, upsertSession } from "./sidebar.js";
import { state, TURN_KEY } from "./state.js";

const SSE = "text/event-stream";
const RESUME_DELAYS_MS = [0, 500, 1000, 2000, 4000, 8000]; // each ±50% (jitter)

// ------------------------------------------------------------------ the turn in sessionStorage

/** {session_id, turn_id, hide_from}: what a reload needs to show the turn as it was. */
export function storedTurn() {
  try {
    return JSON.parse(sessionStorage.getItem(TURN_KEY));
  } catch {
    return null;
  }
}

export function forgetTurn() {
  sessionStorage.removeItem(TURN_KEY);
}

function rememberTurn(turn) {
  if (!turn.turnId || !turn.view.id) return;
  const record = { session_id: turn.view.id, turn_id: turn.turnId, hide_from: turn.view.hideFrom };
  sessionStorage.setItem(TURN_KEY, JSON.stringify(record));
}

function newTurn(view, request) {
  return {
    view,
    request, // {body, key, shown, hideFrom}; null when re-attached to a running turn
    turnId: null,
    branch: null, // where the turn stores (its `turn` event): a new branch for an edit
    lastId: 0, // the highest event id seen: Last-Event-ID of a re-attachment
    received: 0, // events shown (not skipped): progress, which resets the reconnection backoff
    finished: false,
    controller: new AbortController(),
    live: null, // live.js
  };
}

/** Stop showing the turn (another conversation opens); the server finishes it regardless. */
export function detachTurn() {
  if (!state.turn) return;
  state.turn.controller.abort();
  state.turn = null;
  $("live").replaceChildren();
}

// ------------------------------------------------------------------------------- sending

/** A turn: POST the chat with an Idempotency-Key (a retry sends the same one), then stream.
 * `hideFrom`: the seq an edit or a regeneration replaces (null for a new message). */
export async function sendTurn(body, { hideFrom = null, shown = null, key = newKey() } = {}) {
  if (state.turn) return;
  const view = state.view;
  view.hideFrom = hideFrom; // a retry hides what its first attempt hid; anything else, its own
  const turn = (state.turn = newTurn(view, { body, key, hideFrom, shown }));
  renderView();
  live.liveStart(turn, shown);
  followBottom(true);
  say("Sending…");
  const url = view.id ? chatUrl(`/v1/sessions/${enc(view.id)}/chat`) : chatUrl("/v1/chat");
  let response;
  try {
    response = await authedFetch(url, {
      method: "POST",
      headers: { Accept: SSE, "Content-Type": "application/json", "Idempotency-Key": key },
      body: JSON.stringify(body),
      signal: turn.controller.signal,
    });
  } catch (error) {
    if (turn.controller.signal.aborted || gone(error)) return;
    return turnFailed(turn, `The message could not be sent: ${messageOf(error)}`);
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (error.code === "turn_in_progress" && view.id) return attachToRunning(turn, body);
    return turnFailed(turn, error.message, undefined, { retry_after: error.retryAfter });
  }
  say("The assistant is answering…");
  const outcome = await consume(turn, response);
  if (outcome === "broken") await reattach(turn);
}

/** Another turn of this session runs (another tab, or a retry of ours): show it instead. */
async function attachToRunning(turn, body) {
  const view = turn.view;
  try {
    view.session = await api("GET", `/v1/sessions/${enc(view.id)}`);
  } catch (error) {
    if (gone(error)) return;
    return turnFailed(turn, messageOf(error));
  }
  if (state.turn !== turn) return;
  const running = view.session.turn_in_progress;
  if (!running) return turnFailed(turn, "Another answer was in progress. Try again.");
  if (body.message && turn.request.hideFrom === null) $("composer-input").value = body.message;
  state.turn = null;
  $("live").replaceChildren();
  view.hideFrom = null;
  renderMessages();
  resumeTurn(view, running);
  say("Another answer is in progress in this conversation; showing it. Your message was not sent.");
}

// ---------------------------------------------------------------------------- re-attaching

/** Re-attach to a running turn (after a reload, or another tab's): its events from the start. */
export function resumeTurn(view, turnId) {
  const turn = (state.turn = newTurn(view, null));
  turn.turnId = turnId;
  rememberTurn(turn);
  renderView();
  live.liveStart(turn, null);
  say("Resuming the answer in progress…");
  reattach(turn, true);
}

function jittered(ms) {
  return ms * (0.5 + Math.random());
}

/** GET .../turns/{turn_id}/events with Last-Event-ID, again with backoff while it breaks. Any
 * event that arrives starts the backoff over: only attempts that bring nothing count. */
async function reattach(turn, fromStart = false) {
  if (!turn.turnId || !turn.view.id) {
    // Lost before the turn was announced: a retry with the same key finds it (a 409 shows the
    // running turn, a finished one is replayed) or runs it.
    return turnFailed(turn, "The connection was lost before the answer started.");
  }
  const path = `/v1/sessions/${enc(turn.view.id)}/turns/${enc(turn.turnId)}/events`;
  let attempt = 0;
  let pause = 0; // what the server asked for (Retry-After), in ms
  while (attempt < RESUME_DELAYS_MS.length) {
    if (state.turn !== turn || turn.finished) return;
    const delay = Math.max(jittered(RESUME_DELAYS_MS[attempt]), pause);
    if (delay) await sleep(delay);
    if (state.turn !== turn) return;
    if (!fromStart || attempt > 0) say("Connection lost; reconnecting to the answer…");
    attempt += 1;
    pause = 0;
    const headers = { Accept: SSE };
    const whole = fromStart && turn.lastId === 0;
    if (!whole) headers["Last-Event-ID"] = String(turn.lastId);
    let response;
    try {
      response = await authedFetch(chatUrl(path), { headers, signal: turn.controller.signal });
    } catch (error) {
      if (turn.controller.signal.aborted || gone(error)) return;
      continue; // offline for now: try again
    }
    if (response.status === 404) {
      // Unknown or expired: what was stored is in the history.
      forgetTurn();
      return finishTurn(turn, null, "The answer could not be resumed; showing what was stored.");
    }
    if (!response.ok) {
      const error = await errorOf(response);
      pause = (error.retryAfter || 0) * 1000;
      if (response.status >= 500 || error.code === "throttled") continue;
      return turnFailed(turn, error.message, undefined, { retry_after: error.retryAfter });
    }
    if (whole) live.liveStart(turn, null);
    const before = turn.received;
    const outcome = await consume(turn, response);
    if (outcome !== "broken") return;
    if (turn.received > before) attempt = 0; // it was getting somewhere
  }
  if (state.turn === turn && !turn.finished) {
    turnFailed(turn, "The connection to the answer was lost.", () => {
      state.turn = null;
      openSession(turn.view.id);
    });
  }
}

// ------------------------------------------------------------------------------- the stream

/** Read the SSE stream into the page; "done", "error", "aborted" or "broken" (no terminal). */
async function consume(turn, response) {
  try {
    for await (const event of sseEvents(response.body)) {
      if (state.turn !== turn) return "aborted";
      const terminal = onEvent(turn, event);
      if (terminal) return terminal;
    }
  } catch {
    if (turn.controller.signal.aborted || state.turn !== turn) return "aborted";
  }
  return "broken";
}

/** One event. Numbered events already shown are skipped (a re-attachment repeats none, but a
 * resumed stream may); `done` and `error` never are: the synthetic `error` of a resumed
 * stream (e.g. `stream_incomplete`) has no id at all. */
function onEvent(turn, event) {
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    return null;
  }
  const terminal = event.name === "done" || event.name === "error";
  const id = event.id === null || event.id === "" ? NaN : Number(event.id);
  if (Number.isInteger(id) && id > 0) {
    if (id <= turn.lastId && !terminal) return null; // already shown
    turn.lastId = Math.max(turn.lastId, id);
  }
  turn.received += 1;
  const view = turn.view;
  const atBottom = scrolledToBottom();
  switch (event.name) {
    case "session":
      view.id = data.session_id;
      history.replaceState(null, "", `#/s/${enc(view.id)}`);
      upsertSession(
        {
          session_id: view.id,
          title: "New chat",
          metadata: {},
          message_count: 0,
          updated_at: new Date().toISOString(),
        },
        true,
      );
      renderHead();
      break;
    case "turn":
      onTurnEvent(turn, data);
      break;
    case "token":
      live.liveToken(turn, data.delta || "");
      break;
    case "tool_call":
      live.liveToolCall(turn, data);
      break;
    case "tool_output":
      live.liveToolOutput(turn, data);
      break;
    case "done":
      turn.finished = true;
      forgetTurn();
      finishTurn(turn, data, live.liveSummary(turn));
      return "done";
    case "error":
      turn.finished = true;
      forgetTurn();
      turnFailed(turn, data.message || "The answer failed.", undefined, data);
      return "error";
    default:
      break;
  }
  followBottom(atBottom);
  return null;
}

/** `turn` {turn_id, message, branch}: the turn's id, the message it answers, where it stores. */
function onTurnEvent(turn, data) {
  const view = turn.view;
  turn.turnId = data.turn_id;
  turn.branch = data.branch || null;
  if (data.message) live.liveUser(turn, data.message);
  if (!turn.request && view.hideFrom === null && turn.branch && turn.branch !== view.branch) {
    // Re-attached to an edit or a regeneration this tab did not start: it stores on a new
    // branch, replacing the messages from the one it asks again (a regeneration: the last
    // with its text); an edit's is unknown here, so until it completes none are shown.
    const asked = view.messages.filter((m) => m.role === "user" && m.text === data.message);
    view.hideFrom = asked.length ? asked[asked.length - 1].seq : 0;
    renderMessages();
  }
  rememberTurn(turn);
  patchSession(view.id, { turn_in_progress: turn.turnId });
}

// ------------------------------------------------------------------------------ the end

/** `done` (or a turn that cannot be resumed): the stored history replaces the live copy. */
async function finishTurn(turn, done, message) {
  const view = turn.view;
  live.liveEnd(turn);
  try {
    if (view.id) {
      view.session = await api("GET", `/v1/sessions/${enc(view.id)}`);
      upsertSession(view.session, true);
      const branch = (done && done.branch) || turn.branch || view.session.active_branch;
      const moved = (branch && branch !== view.branch) || view.hideFrom !== null;
      view.branch = branch || view.branch;
      if (moved || !view.branches.length) await Promise.all([loadBranches(view), loadNewest(view)]);
      else await loadTail(view);
    }
  } catch (error) {
    if (gone(error)) return;
    message = `${message} (The history could not be reloaded: ${messageOf(error)})`;
  }
  if (state.turn !== turn) return;
  state.turn = null;
  view.hideFrom = null;
  $("live").replaceChildren(); // in the same task as the render: never shown twice
  renderView({ bottom: true });
  say(message);
}

/** The turn failed: its error with a Retry; the history's actions come back. */
function turnFailed(turn, text, retry, data) {
  if (state.turn !== turn) return;
  live.liveEnd(turn);
  state.turn = null;
  const request = turn.request;
  const again =
    retry ||
    (request
      ? () => {
          if (state.turn) return;
          const { body, hideFrom, shown, key } = request;
          if (state.view === turn.view) sendTurn(body, { hideFrom, shown, key });
        }
      : () => openSession(turn.view.id));
  const wait = data && data.retry_after ? ` ${waitNote(data.retry_after)}` : "";
  renderView(); // Edit and Regenerate again (what the failed edit replaced stays hidden)
  $("live").append(errorItem(`${text}${wait}`, again));
  if (turn.view.id) refreshSession(turn.view.id); // no longer "answering"
  say(`The answer failed: ${text}`);
}
