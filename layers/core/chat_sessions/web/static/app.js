// The chat page of chat-sessions (docs/page.md): plain ES modules, no build step, no dependency.
// This one wires them: the config, the routes (#/ a new chat, #/s/<id> a conversation), the
// message box and the page's keys.
//
//   state.js         what the modules share
//   dom.js           element and focus helpers
//   api.js           the token (sign-in state) and every authorized request
//   signin.js        the sign-in forms and signing out
//   sidebar.js       the conversations, rename, delete, the phone's toggle
//   conversation.js  the history shown, its pages and branches, edits
//   items.js         the history's list items
//   turns.js         sending, streaming and resuming a turn
//   live.js          the turn streaming now, as it arrives
//   sse.js           the Server-Sent Events parser

import { claimsOf, errorOf, loadAuth } from "./api.js";
import { bindConversation, newChat, openSession } from "./conversation.js";
import { $, coarsePointer, el, isSend, say } from "./dom.js";
import { bindSignIn, showSignIn, signOut } from "./signin.js";
import { loadSessions, narrow, setSidebar } from "./sidebar.js";
import { state } from "./state.js";
import { sendTurn, storedTurn } from "./turns.js";

/** The session the address names (#/s/<id>); a malformed one names none. */
function routedSession() {
  const match = /^#\/s\/(.+)$/.exec(location.hash);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null; // e.g. "#/s/%"
  }
}

function route() {
  const id = routedSession();
  if (id !== null) {
    if (!state.view || state.view.id !== id) openSession(id);
  } else if (!state.view || state.view.id) {
    const stored = storedTurn();
    if (stored && stored.session_id && !location.hash) openSession(stored.session_id);
    else newChat();
  }
}

function start() {
  state.auth = state.auth || loadAuth();
  if (!state.auth) return showSignIn();
  const claims = claimsOf(state.auth.token);
  if (state.auth.mode !== "cognito" && claims.exp && claims.exp * 1000 < Date.now()) {
    return signOut("Your token has expired. Sign in again.");
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signin-error").hidden = true;
  $("whoami").textContent = state.auth.user || claims.sub || "";
  say("");
  state.view = null;
  route();
  loadSessions(true);
}

// -------------------------------------------------------------------------- the message box

function submitComposer(event) {
  event.preventDefault();
  const input = $("composer-input");
  const message = input.value.trim();
  if (!message || state.turn || !state.view || state.view.missing) return;
  input.value = "";
  autosize();
  const body = { message };
  if (state.view.id && state.view.branch) body.branch = state.view.branch;
  sendTurn(body, { shown: message });
}

function autosize() {
  const input = $("composer-input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, window.innerHeight * 0.4)}px`;
}

/** What Enter does, said where it is done: on a touch screen it adds a line. */
function describeKeys() {
  const touch = coarsePointer.matches;
  const hint = touch
    ? "Enter adds a new line; the Send button sends."
    : "Enter sends, Shift+Enter adds a new line.";
  $("composer-hint").textContent = hint;
  $("composer-input").placeholder = touch
    ? "Message"
    : "Message (Enter sends, Shift+Enter for a new line)";
}

// ------------------------------------------------------------------------------- wiring

function bind() {
  bindSignIn(start);
  bindConversation();
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault(); // the address names the conversation: no fragment of our own
    $("composer-input").focus();
  });
  for (const button of document.querySelectorAll("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close(button.dataset.close));
  }
  $("new-chat").addEventListener("click", () => newChat({ push: true }));
  $("sessions-more").addEventListener("click", () => loadSessions());
  $("composer").addEventListener("submit", submitComposer);
  $("composer-input").addEventListener("input", autosize);
  $("composer-input").addEventListener("keydown", (event) => {
    if (isSend(event)) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  describeKeys();
  coarsePointer.addEventListener("change", describeKeys);
  $("sidebar-toggle").addEventListener("click", () => {
    setSidebar(!$("app").classList.contains("sidebar-open"));
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && $("app").classList.contains("sidebar-open") && narrow()) {
      setSidebar(false);
      $("sidebar-toggle").focus();
    }
  });
  window.addEventListener("popstate", () => state.auth && route());
}

async function boot() {
  try {
    const response = await fetch("/page/config.json", { headers: { Accept: "application/json" } });
    if (!response.ok) throw await errorOf(response);
    state.config = await response.json();
  } catch (error) {
    const text = `The page's config could not be loaded: ${error.message}`;
    document.body.replaceChildren(
      el(
        "main",
        { class: "signin" },
        el("h1", { text: "chat-sessions" }),
        el("p", { class: "error", role: "alert", text }),
      ),
    );
    return;
  }
  bind();
  start();
}

boot();
