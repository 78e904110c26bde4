// Signing in, by the config's mode, and out:
// - "dev" (make dev, the tests): POST /dev/token {user} to the local server (local only);
// - "cognito": user name and password to Cognito's public API, the new-password challenge;
// - "token": a pasted bearer token from your own issuer.

import {
  claimsOf,
  cognito,
  cognitoSignedIn,
  endGeneration,
  errorOf,
  onSignedOut,
  saveAuth,
} from "./api.js";
import { $ } from "./dom.js";
import { resetSidebar, setSidebar } from "./sidebar.js";
import { AUTH_KEY, state, TURN_KEY } from "./state.js";

export function showSignIn(message) {
  const mode = state.config.auth;
  $("app").hidden = true;
  $("signin").hidden = false;
  for (const each of ["dev", "token", "cognito"]) $(`signin-${each}`).hidden = each !== mode;
  const error = $("signin-error");
  error.hidden = !message;
  error.textContent = message || "";
  document.title = "Sign in · chat-sessions";
  const first = $(`signin-${mode}`).querySelector("input, textarea");
  if (first) first.focus();
}

function signInFailed(error) {
  const box = $("signin-error");
  box.hidden = false;
  box.textContent = error.message || String(error);
}

/** Signs out: in-flight requests are aborted and their answers dropped, and the page forgets
 * the user's conversations (and, for Cognito, revokes the refresh token). */
export function signOut(message) {
  const auth = state.auth;
  if (auth && auth.mode === "cognito" && auth.refresh) {
    const body = { Token: auth.refresh, ClientId: state.config.cognito.client_id };
    cognito("RevokeToken", body).catch(() => {});
  }
  endGeneration();
  if (state.turn) state.turn.controller.abort();
  state.turn = null;
  state.auth = null;
  state.view = null;
  state.cognitoChallenge = null;
  resetSidebar();
  setSidebar(false); // the phone's open sidebar folds: nothing stays inert
  sessionStorage.removeItem(AUTH_KEY);
  sessionStorage.removeItem(TURN_KEY);
  $("messages").replaceChildren();
  $("live").replaceChildren();
  $("status").textContent = "";
  history.replaceState(null, "", location.pathname);
  showSignIn(message);
}

/** The sign-in forms; `signedIn` starts the page once a token is there. */
export function bindSignIn(signedIn) {
  onSignedOut(signOut);
  $("signin-dev").addEventListener("submit", (event) => signInDev(event, signedIn));
  $("signin-token").addEventListener("submit", (event) => signInToken(event, signedIn));
  $("signin-cognito").addEventListener("submit", (event) => signInCognito(event, signedIn));
  $("signout").addEventListener("click", () => signOut("Signed out."));
}

async function signInDev(event, signedIn) {
  event.preventDefault();
  const user = $("dev-user").value.trim();
  try {
    const response = await fetch("/dev/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user }),
    });
    if (!response.ok) throw await errorOf(response);
    const { token } = await response.json();
    saveAuth({ mode: "dev", token, user });
    signedIn();
  } catch (error) {
    signInFailed(error);
  }
}

function signInToken(event, signedIn) {
  event.preventDefault();
  const token = $("token-input").value.trim().replace(/^Bearer\s+/i, "");
  const claims = claimsOf(token);
  if (!claims.sub) {
    signInFailed(new Error("That does not look like a JWT with a subject (sub)."));
    return;
  }
  saveAuth({ mode: "token", token, user: claims.email || claims.sub });
  signedIn();
}

async function signInCognito(event, signedIn) {
  event.preventDefault();
  const username = $("cognito-user").value.trim();
  const clientId = state.config.cognito.client_id;
  const challenge = state.cognitoChallenge;
  try {
    const data = challenge
      ? await cognito("RespondToAuthChallenge", {
          ChallengeName: "NEW_PASSWORD_REQUIRED",
          ClientId: clientId,
          Session: challenge.session,
          ChallengeResponses: {
            USERNAME: challenge.username,
            NEW_PASSWORD: $("cognito-new-password").value,
          },
        })
      : await cognito("InitiateAuth", {
          AuthFlow: "USER_PASSWORD_AUTH",
          ClientId: clientId,
          AuthParameters: { USERNAME: username, PASSWORD: $("cognito-password").value },
        });
    if (data.ChallengeName === "NEW_PASSWORD_REQUIRED") {
      const parameters = data.ChallengeParameters || {};
      const named = parameters.USER_ID_FOR_SRP || username;
      state.cognitoChallenge = { session: data.Session, username: named };
      $("new-password-group").hidden = false;
      $("cognito-new-password").required = true;
      signInFailed(new Error("Choose a new password to finish signing in."));
      $("cognito-new-password").focus();
      return;
    }
    if (data.ChallengeName) {
      throw new Error(`Cognito asks for ${data.ChallengeName}, which this page does not support.`);
    }
    state.cognitoChallenge = null;
    $("new-password-group").hidden = true;
    $("cognito-password").value = $("cognito-new-password").value = "";
    cognitoSignedIn(data.AuthenticationResult, username);
    signedIn();
  } catch (error) {
    signInFailed(error);
  }
}
