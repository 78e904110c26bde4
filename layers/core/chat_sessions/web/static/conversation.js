// The conversation shown: its history (newest page first, older pages on scrolling up), its
// branches, edits and regenerations. The turn streaming into it is turns.js's.

import { api, gone, messageOf } from "./api.js";
import { $, el, enc, focusWithin, isSend, restoreFocus, say, titleOf } from "./dom.js";
import { errorItem, messageItem } from "./items.js";
import { narrow, renderSessions, setSidebar, upsertSession } from "./sidebar.js";
import { state } from "./state.js";
import { detachTurn, forgetTurn, resumeTurn, sendTurn, storedTurn } from "./turns.js";

const MESSAGES_PAGE = 30;

export function newView(id) {
  return {
    id, // null for a new chat until its `session` event
    session: null,
    branch: null, // the branch shown (the session's active one)
    branches: [],
    messages: [], // ascending seq
    older: null, // cursor of the page before the first shown message
    loadingOlder: false,
    epoch: 0, // +1 whenever `messages` is replaced: an older page read before belongs elsewhere
    hideFrom: null, // an edit or regeneration in flight hides the messages it replaces (seq)
    missing: false,
    error: null,
  };
}

export function newChat({ push = false } = {}) {
  detachTurn();
  state.view = newView(null);
  if (push) history.pushState(null, "", "#/");
  renderView();
  if (narrow()) setSidebar(false);
  $("composer-input").focus();
}

export async function openSession(id, { push = false } = {}) {
  if (state.turn && state.view && state.view.id === id) {
    if (narrow()) setSidebar(false); // already shown, answering
    return;
  }
  detachTurn();
  const view = (state.view = newView(id));
  if (push) history.pushState(null, "", `#/s/${enc(id)}`);
  if (narrow()) setSidebar(false);
  renderView();
  say("Loading the conversation…");
  let running;
  try {
    view.session = await api("GET", `/v1/sessions/${enc(id)}`);
    if (state.view !== view) return;
    running = await settle(view);
    if (state.view !== view) return;
    say("");
  } catch (error) {
    if (state.view !== view || gone(error)) return;
    if (error.status === 404) view.missing = true;
    else view.error = error;
    const text = `The conversation could not be loaded: ${messageOf(error)}`;
    say(error.status === 404 ? "Conversation not found." : text);
  }
  renderView({ bottom: true });
  if (view.missing || view.error) return;
  const stored = storedTurn();
  const mine = stored && stored.session_id === id ? stored : null;
  if (running) {
    if (mine && mine.turn_id === running) view.hideFrom = mine.hide_from ?? null;
    resumeTurn(view, running);
  } else if (running === undefined && mine) {
    view.hideFrom = mine.hide_from ?? null;
    resumeTurn(view, mine.turn_id); // an API without the field: sessionStorage says
  } else if (mine) {
    forgetTurn(); // finished while we were away: the history has it
  }
}

/**
 * The history and branches of `view.session`; returns the turn to resume (its id), or null.
 * A turn the session names may be stored while the history is read, and then shows in it: so
 * the session is read again, and only a turn still running then (not yet stored when the
 * history was read) is resumed, else the history is read again. Never shows an answer twice.
 */
async function settle(view) {
  for (let round = 0; round < 3; round += 1) {
    const running = view.session.turn_in_progress;
    view.branch = view.session.active_branch || "main";
    upsertSession(view.session);
    await Promise.all([loadBranches(view), loadNewest(view)]);
    if (!running || state.view !== view) return running;
    view.session = await api("GET", `/v1/sessions/${enc(view.id)}`);
    if (view.session.turn_in_progress === running) return running;
  }
  return null;
}

export async function loadBranches(view) {
  const branches = [];
  let cursor;
  for (let page = 0; page < 5; page++) {
    const path = `/v1/sessions/${enc(view.id)}/branches`;
    const answer = await api("GET", path, { query: { limit: 100, cursor } });
    branches.push(...answer.branches);
    cursor = answer.next_cursor;
    if (!cursor) break;
  }
  view.branches = branches;
}

function newestPage(view, cursor) {
  return api("GET", `/v1/sessions/${enc(view.id)}/messages`, {
    query: { limit: MESSAGES_PAGE, order: "desc", branch: view.branch, cursor },
  });
}

export async function loadNewest(view) {
  const page = await newestPage(view);
  view.messages = page.messages.slice().reverse();
  view.older = page.next_cursor;
  view.epoch += 1;
}

/** After a turn: the newest page again, joined to the older pages already shown. */
export async function loadTail(view) {
  const page = await newestPage(view);
  const fresh = page.messages.slice().reverse();
  const lowest = fresh.length ? fresh[0].seq : Infinity;
  const known = view.messages;
  const newestKnown = known.length ? known[known.length - 1].seq : -Infinity;
  if (page.next_cursor === null || lowest > newestKnown) {
    view.messages = fresh; // everything, or the turn outgrew a page: start paging from here
    view.older = page.next_cursor;
  } else {
    view.messages = known.filter((m) => m.seq < lowest).concat(fresh);
  }
  view.epoch += 1;
}

async function loadOlder() {
  const view = state.view;
  if (!view || !view.older || view.loadingOlder) return;
  const { epoch, branch, older } = view;
  view.loadingOlder = true;
  try {
    const page = await newestPage(view, older);
    // A branch switch or a finished turn replaced the history meanwhile: not its page.
    if (state.view !== view || view.epoch !== epoch || view.branch !== branch) return;
    view.messages = page.messages.slice().reverse().concat(view.messages);
    view.older = page.next_cursor;
    const history = $("history");
    const fromBottom = history.scrollHeight - history.scrollTop;
    renderMessages();
    history.scrollTop = history.scrollHeight - fromBottom; // keep what was on screen in place
    say(`Loaded ${page.messages.length} older messages.`);
  } catch (error) {
    if (!gone(error)) say(`Older messages could not be loaded: ${messageOf(error)}`);
  } finally {
    view.loadingOlder = false;
    if (state.view === view) observeOlder();
  }
}

const olderObserver = new IntersectionObserver(
  (entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadOlder();
  },
  { root: null, rootMargin: "100px" },
);

function observeOlder() {
  const button = $("load-older");
  olderObserver.unobserve(button);
  const view = state.view;
  button.hidden = !(view && view.older);
  if (view && view.older) olderObserver.observe(button);
}

export function bindConversation() {
  $("load-older").addEventListener("click", loadOlder);
  $("branch-select").addEventListener("change", switchBranch);
}

// ------------------------------------------------------------------------------ rendering

export function renderView({ bottom = false } = {}) {
  renderHead();
  renderMessages();
  renderSessions();
  const history = $("history");
  if (bottom) history.scrollTop = history.scrollHeight;
  observeOlder();
}

export function renderHead() {
  const view = state.view;
  const heading = $("conversation-title");
  if (!view || !view.id) heading.textContent = "New chat";
  else if (view.missing) heading.textContent = "Conversation not found";
  else if (view.session) heading.textContent = titleOf(view.session);
  else heading.textContent = state.turn && state.turn.view === view ? "New chat" : "Loading…";
  document.title = `${heading.textContent} · chat-sessions`;
  const bar = $("branch-bar");
  bar.hidden = !(view && view.session && view.branches.length);
  if (bar.hidden) return;
  const select = $("branch-select");
  const numbered = view.branches
    .filter((b) => b.branch_id !== "main")
    .sort((a, b) => a.created_at.localeCompare(b.created_at));
  const label = (b) =>
    b.name || (b.branch_id === "main" ? "main" : `Branch ${numbered.indexOf(b) + 1}`);
  const option = (b) =>
    el(
      "option",
      { value: b.branch_id, selected: b.branch_id === view.branch },
      `${label(b)} (${b.message_count} messages)`,
    );
  select.replaceChildren(...view.branches.map(option));
  select.value = view.branch;
  select.disabled = Boolean(state.turn) || view.branches.length < 2;
  const shown = view.branches.find((b) => b.branch_id === view.branch);
  const count = view.branches.length;
  const plural = count === 1 ? "" : "es";
  const name = shown ? label(shown) : view.branch;
  $("branch-note").textContent = `On ${name}, ${count} branch${plural}`;
}

/** The stored history; what an edit or a regeneration in flight replaces is hidden. */
export function renderMessages() {
  const view = state.view;
  const list = $("messages");
  const note = $("history-note");
  const focus = focusWithin(list);
  list.replaceChildren();
  note.hidden = true;
  $("composer-input").disabled = Boolean(view && view.missing);
  $("send").disabled = Boolean(state.turn) || Boolean(view && view.missing);
  if (!view) return;
  if (view.missing) {
    note.hidden = false;
    note.textContent = "This conversation does not exist, has expired, or belongs to someone else.";
    return;
  }
  if (view.error) {
    const text = `The conversation could not be loaded: ${messageOf(view.error)}`;
    list.append(errorItem(text, () => openSession(view.id)));
    return;
  }
  if (!view.id && !state.turn) {
    note.hidden = false;
    note.textContent = "Ask anything to start a conversation.";
  }
  const hiding = view.hideFrom !== null;
  const shown = hiding ? view.messages.filter((m) => m.seq < view.hideFrom) : view.messages;
  const outputs = new Map(
    shown.filter((m) => m.type === "function_call_output").map((m) => [m.item.call_id, m]),
  );
  const calls = new Set(shown.filter((m) => m.type === "function_call").map((m) => m.item.call_id));
  const last = shown[shown.length - 1];
  const idle = !state.turn;
  const answered = last && last.type === "message" && last.role === "assistant";
  const canRegenerate = idle && !hiding && answered;
  for (const message of shown) {
    if (message.type === "function_call_output" && calls.has(message.item.call_id)) continue;
    const actions = {
      edit: idle && message.role === "user" ? startEdit : null,
      regenerate: canRegenerate && message === last ? regenerateAnswer : null,
    };
    list.append(messageItem(message, outputs, actions));
  }
  restoreFocus(list, focus, { fallback: $("history") });
}

// ------------------------------------------------------------------ edits and regenerations

function startEdit(node, message) {
  const input = el("textarea", {
    class: "edit-input",
    rows: 3,
    maxlength: 32000,
    "data-action": "edit-text",
    "aria-label": "Edited message",
  });
  input.value = message.text;
  const cancel = el(
    "button",
    { type: "button", "data-action": "edit-cancel", onclick: () => renderMessages() },
    "Cancel",
  );
  const submit = el("button", { type: "submit", class: "primary" }, "Send edit");
  const buttons = el("div", { class: "edit-actions" }, cancel, submit);
  const form = el("form", { class: "edit-form" }, input, buttons);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    const body = { message: text, replaces_seq: message.seq, branch: state.view.branch };
    sendTurn(body, { hideFrom: message.seq, shown: text });
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") renderMessages(); // the focus goes back to its Edit button
    else if (isSend(event)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  node.querySelector(".text").replaceWith(form);
  const actions = node.querySelector(".message-actions");
  if (actions) actions.remove();
  input.focus();
}

function regenerateAnswer() {
  const view = state.view;
  const users = view.messages.filter((m) => m.type === "message" && m.role === "user");
  const asked = users[users.length - 1];
  if (!asked) return;
  sendTurn({ regenerate: true, branch: view.branch }, { hideFrom: asked.seq, shown: asked.text });
}

async function switchBranch(event) {
  const view = state.view;
  const branch = event.target.value;
  if (!view || !view.id || branch === view.branch) return;
  say("Switching branch…");
  try {
    const path = `/v1/sessions/${enc(view.id)}`;
    await api("PATCH", `${path}/branches/${enc(branch)}`, { body: { active: true } });
    view.session = await api("GET", path);
    if (state.view !== view) return;
    view.branch = view.session.active_branch || branch;
    await Promise.all([loadBranches(view), loadNewest(view)]);
    if (state.view !== view) return;
    renderView({ bottom: true });
    const shown = view.branches.find((b) => b.branch_id === view.branch);
    const fallback = view.branch === "main" ? "main" : "another branch";
    const name = shown && shown.name ? shown.name : fallback;
    say(`Switched to ${name}.`);
  } catch (error) {
    if (gone(error) || state.view !== view) return;
    say(`The branch could not be switched: ${messageOf(error)}`);
    renderHead();
  }
}

// ------------------------------------------------------------------------------ scrolling

export function scrolledToBottom() {
  const history = $("history");
  return history.scrollHeight - history.scrollTop - history.clientHeight < 80;
}

export function followBottom(wasAtBottom) {
  if (wasAtBottom) $("history").scrollTop = $("history").scrollHeight;
}
