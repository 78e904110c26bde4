// The sidebar: conversations by last activity (infinite scroll), rename and delete, and the
// phone layout's toggle.

import { api, gone, messageOf } from "./api.js";
import { newChat, openSession, renderHead } from "./conversation.js";
import {
  $,
  BIN,
  el,
  enc,
  focusWithin,
  icon,
  PENCIL,
  restoreFocus,
  say,
  titleOf,
  when,
} from "./dom.js";
import { state } from "./state.js";

const SESSIONS_PAGE = 20;
const BUSY_CHECK_MS = 4000;
const NARROW = matchMedia("(max-width: 760px)"); // app.css folds the sidebar at this width
let busyTimer = null; // watchBusy's

const sessionsObserver = new IntersectionObserver(
  (entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadSessions();
  },
  { rootMargin: "200px" },
);

/** The next page of the listing (the first with `reset`). */
export async function loadSessions(reset = false) {
  if (state.loadingSessions || (!reset && state.nextCursor === null)) return;
  const auth = state.auth;
  state.loadingSessions = true;
  $("sessions-error").hidden = true;
  try {
    const cursor = reset ? undefined : state.nextCursor;
    const page = await api("GET", "/v1/sessions", { query: { limit: SESSIONS_PAGE, cursor } });
    if (reset) state.sessions = [];
    const known = new Set(state.sessions.map((s) => s.session_id));
    state.sessions.push(...page.sessions.filter((s) => !known.has(s.session_id)));
    state.nextCursor = page.next_cursor;
  } catch (error) {
    if (gone(error) || state.auth !== auth) return; // signed out meanwhile: not ours to show
    $("sessions-error").hidden = false;
    $("sessions-error").textContent = `Conversations could not be loaded: ${messageOf(error)}`;
  } finally {
    if (state.auth === auth) state.loadingSessions = false;
  }
  renderSessions();
  const more = $("sessions-more");
  sessionsObserver.unobserve(more);
  if (state.nextCursor) sessionsObserver.observe(more); // observing again reports it if in view
}

/** Sign-out: an empty sidebar, ready for the next user. */
export function resetSidebar() {
  state.sessions = [];
  state.nextCursor = undefined;
  state.loadingSessions = false;
  clearTimeout(busyTimer);
  busyTimer = null;
  sessionsObserver.unobserve($("sessions-more"));
  $("sessions").replaceChildren();
  $("sessions-error").hidden = true;
}

export function upsertSession(session, toTop = false) {
  const at = state.sessions.findIndex((s) => s.session_id === session.session_id);
  if (at >= 0) {
    const merged = { ...state.sessions[at], ...session };
    if (toTop) {
      state.sessions.splice(at, 1);
      state.sessions.unshift(merged);
    } else {
      state.sessions[at] = merged;
    }
  } else {
    state.sessions.unshift(session);
  }
  renderSessions();
}

/** New values for a listed session (one not listed stays so). */
export function patchSession(id, fields) {
  const at = state.sessions.findIndex((s) => s.session_id === id);
  if (at < 0) return;
  state.sessions[at] = { ...state.sessions[at], ...fields };
  renderSessions();
}

/** The session as the API has it now (its title, count, whether a turn runs). */
export async function refreshSession(id) {
  const auth = state.auth;
  try {
    const session = await api("GET", `/v1/sessions/${enc(id)}`);
    if (state.auth === auth) upsertSession(session);
  } catch (error) {
    if (error.status === 404 && state.auth === auth) {
      state.sessions = state.sessions.filter((s) => s.session_id !== id);
      renderSessions();
    }
  }
}

function liveTurnOf(id) {
  return Boolean(state.turn && state.turn.view.id === id);
}

// A session marked "answering" whose turn this page does not stream (another tab's, or one left
// for another conversation) is read again every few seconds until its turn ends.
function watchBusy() {
  if (busyTimer) return;
  const busy = state.sessions.filter((s) => s.turn_in_progress && !liveTurnOf(s.session_id));
  if (!busy.length) return;
  busyTimer = setTimeout(async () => {
    const auth = state.auth;
    const ids = state.sessions
      .filter((s) => s.turn_in_progress && !liveTurnOf(s.session_id))
      .slice(0, 5)
      .map((s) => s.session_id);
    await Promise.all(ids.map(refreshSession));
    if (state.auth !== auth) return;
    busyTimer = null;
    watchBusy();
  }, BUSY_CHECK_MS);
}

export function renderSessions() {
  const list = $("sessions");
  const focus = focusWithin(list);
  list.replaceChildren(...state.sessions.map(sessionItem));
  restoreFocus(list, focus, { byIndex: true, fallback: $("new-chat") });
  $("sessions-empty").hidden = state.sessions.length > 0 || state.nextCursor !== null;
  $("sessions-more").hidden = !state.nextCursor;
  watchBusy();
}

function sessionItem(session) {
  const id = session.session_id;
  const current = Boolean(state.view && state.view.id === id);
  const busy = Boolean(session.turn_in_progress) || liveTurnOf(id);
  const title = titleOf(session);
  const count = session.message_count ? `${session.message_count} messages` : "";
  const open = el(
    "button",
    {
      type: "button",
      class: "session-open",
      "data-action": "open",
      "aria-current": current ? "page" : null,
      onclick: () => openSession(id, { push: true }),
    },
    el("span", { class: "session-title", text: title }),
    el(
      "span",
      { class: "session-meta" },
      busy ? el("span", { class: "busy-dot", text: "answering" }) : null,
      el("span", { text: [when(session.updated_at), count].filter(Boolean).join(" · ") }),
    ),
  );
  const meta = Object.entries(session.metadata || {});
  const chip = ([key, value]) =>
    el("li", { class: "chip", text: `${key}=${value}`, title: `${key}=${value}` });
  const chips = meta.length
    ? el(
        "ul",
        { class: "chips", "aria-label": "Metadata" },
        ...meta.slice(0, 4).map(chip),
        meta.length > 4 ? el("li", { class: "chip", text: `+${meta.length - 4}` }) : null,
      )
    : null;
  const action = (name, label, path, onclick) =>
    el(
      "button",
      {
        type: "button",
        class: "icon-button",
        "data-action": name,
        "aria-label": `${label} “${title}”`,
        title: label,
        onclick,
      },
      icon(path),
    );
  const actions = el(
    "div",
    { class: "session-actions" },
    action("rename", "Rename", PENCIL, () => renameSession(session)),
    action("delete", "Delete", BIN, () => deleteSession(session)),
  );
  return el(
    "li",
    { class: current ? "session current" : "session", "data-session-id": id, "data-key": id },
    open,
    chips,
    actions,
  );
}

/** After a dialog closes: the focus on the session's control again (or its neighbour's). */
function focusSession(id, action) {
  const list = $("sessions");
  if (list.contains(document.activeElement)) return;
  const item = [...list.children].find((node) => node.dataset.key === id);
  const target = item && item.querySelector(`[data-action="${action}"]`);
  if (target) target.focus();
}

function renameSession(session) {
  const dialog = $("rename-dialog");
  const id = session.session_id;
  $("rename-input").value = session.title || "";
  dialog.returnValue = "";
  dialog.onclose = async () => {
    focusSession(id, "rename");
    if (dialog.returnValue !== "save") return;
    const title = $("rename-input").value.trim();
    try {
      const updated = await api("PATCH", `/v1/sessions/${enc(id)}`, {
        body: { title: title || null },
      });
      upsertSession(updated);
      if (state.view && state.view.id === updated.session_id) {
        state.view.session = updated;
        renderHead();
      }
      say(`Renamed to “${titleOf(updated)}”.`);
    } catch (error) {
      if (!gone(error)) say(`Rename failed: ${messageOf(error)}`);
    }
  };
  dialog.showModal();
  $("rename-input").select();
}

function deleteSession(session) {
  const dialog = $("delete-dialog");
  const id = session.session_id;
  $("delete-text").textContent = `“${titleOf(session)}” and all its messages will be deleted.`;
  dialog.returnValue = "";
  dialog.onclose = async () => {
    focusSession(id, "delete");
    if (dialog.returnValue !== "delete") return;
    try {
      await api("DELETE", `/v1/sessions/${enc(id)}`);
      state.sessions = state.sessions.filter((s) => s.session_id !== id);
      renderSessions(); // the focus moves to the conversation now at its place
      if (state.view && state.view.id === id) newChat({ push: true });
      say(`Deleted “${titleOf(session)}”.`);
    } catch (error) {
      if (!gone(error)) say(`Delete failed: ${messageOf(error)}`);
    }
  };
  dialog.showModal();
}

// ------------------------------------------------------------------------ the phone's toggle

export function narrow() {
  return NARROW.matches;
}

/** Opens or folds the sidebar; on a phone the open sidebar makes the conversation inert. */
export function setSidebar(open) {
  const wasInside = $("sidebar").contains(document.activeElement);
  $("app").classList.toggle("sidebar-open", open);
  $("conversation").inert = open && narrow();
  const toggle = $("sidebar-toggle");
  toggle.setAttribute("aria-expanded", String(open));
  toggle.setAttribute("aria-label", open ? "Hide conversations" : "Show conversations");
  if (open) $("new-chat").focus();
  else if (wasInside && narrow()) toggle.focus(); // the folded sidebar cannot hold the focus
}

NARROW.addEventListener("change", () => {
  if (!narrow()) setSidebar(false);
});
