// Who is signed in, and every request that carries the bearer token.
//
// - The token is kept in sessionStorage: this tab only, gone when it closes.
// - Cognito: the ID token is refreshed a minute before it expires, and once on a 401.
// - Signing out ends the "auth generation": requests still in flight are aborted, and any answer
//   that arrives anyway is refused (ApiError "signed_out"), so nothing of one user's session
//   lands in the next user's page.

import { AUTH_KEY, state } from "./state.js";

const REFRESH_MARGIN_MS = 60_000;

export class ApiError extends Error {
  constructor(status, code, message, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = undefined; // seconds, from Retry-After (429, 503)
    Object.assign(this, extra);
  }
}

/** An answer to drop in silence: the user signed out (or was signed out by a 401) meanwhile. */
export function gone(error) {
  return Boolean(error) && (error.status === 401 || error.code === "signed_out");
}

/** An error's message, with the wait the server asked for (Retry-After) when it named one. */
export function messageOf(error) {
  const text = (error && error.message) || String(error);
  return error && error.retryAfter ? `${text} ${waitNote(error.retryAfter)}` : text;
}

export function waitNote(seconds) {
  return seconds ? `You can retry in ${seconds} s.` : "";
}

// ------------------------------------------------------------------------- the auth generation

let generation = 0;
let controller = new AbortController();
let signedOut = () => {};

/** What to do when a 401 ends the session (signin.js: the sign-in screen). */
export function onSignedOut(handler) {
  signedOut = handler;
}

/** Ends the signed-in generation: what is in flight is aborted, and its answers refused. */
export function endGeneration() {
  generation += 1;
  controller.abort();
  controller = new AbortController();
}

function signedOutError() {
  return new ApiError(0, "signed_out", "Signed out.");
}

// --------------------------------------------------------------------------------- the token

export function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=");
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

export function loadAuth() {
  try {
    const auth = JSON.parse(sessionStorage.getItem(AUTH_KEY));
    return auth && auth.mode === state.config.auth && auth.token ? auth : null;
  } catch {
    return null;
  }
}

export function saveAuth(auth) {
  state.auth = auth;
  sessionStorage.setItem(AUTH_KEY, JSON.stringify(auth));
}

// ---------------------------------------------------------------------------------- Cognito

/** Cognito's public user-pool API (InitiateAuth, RespondToAuthChallenge, RevokeToken). */
export async function cognito(target, body) {
  const url = `https://cognito-idp.${state.config.cognito.region}.amazonaws.com/`;
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "X-Amz-Target": `AWSCognitoIdentityProviderService.${target}`,
      "Content-Type": "application/x-amz-json-1.1",
    },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = String(data.__type || "cognito_error").split("#").pop();
    const message = data.message || `Cognito refused the sign-in (${response.status}).`;
    throw new ApiError(response.status, code, message);
  }
  return data;
}

export function cognitoSignedIn(result, username) {
  const claims = claimsOf(result.IdToken);
  saveAuth({
    mode: "cognito",
    token: result.IdToken,
    refresh: result.RefreshToken || (state.auth && state.auth.refresh),
    expires: Date.now() + (result.ExpiresIn || 3600) * 1000,
    user: claims["cognito:username"] || username || claims.sub,
  });
}

async function refreshCognito() {
  if (!state.refreshing) {
    const auth = state.auth;
    const epoch = generation;
    state.refreshing = cognito("InitiateAuth", {
      AuthFlow: "REFRESH_TOKEN_AUTH",
      ClientId: state.config.cognito.client_id,
      AuthParameters: { REFRESH_TOKEN: auth.refresh },
    })
      .then((data) => {
        if (epoch !== generation) throw signedOutError();
        cognitoSignedIn(data.AuthenticationResult, auth.user);
      })
      .finally(() => {
        state.refreshing = null;
      });
  }
  return state.refreshing;
}

async function authorization() {
  const auth = state.auth;
  if (!auth) throw new ApiError(401, "unauthorized", "Sign in first.");
  const cognitoAuth = auth.mode === "cognito" && auth.refresh;
  if (cognitoAuth && Date.now() > auth.expires - REFRESH_MARGIN_MS) {
    try {
      await refreshCognito();
    } catch (error) {
      if (error.code === "signed_out") throw error;
      signedOut("Your sign-in expired. Sign in again.");
      throw new ApiError(401, "unauthorized", "Your sign-in expired.");
    }
  }
  return `Bearer ${state.auth.token}`;
}

// ---------------------------------------------------------------------------------- requests

function anySignal(signals) {
  const given = signals.filter(Boolean);
  if (given.length === 1 || !AbortSignal.any) return given[0];
  return AbortSignal.any(given);
}

/** fetch with the bearer token; a 401 refreshes a Cognito token once, else signs out. */
export async function authedFetch(url, init = {}, retried = false) {
  const epoch = generation;
  const headers = new Headers(init.headers || {});
  headers.set("Authorization", await authorization());
  if (epoch !== generation) throw signedOutError();
  const signal = anySignal([init.signal, controller.signal]);
  let response;
  try {
    response = await fetch(url, { ...init, headers, signal });
  } catch (error) {
    if (epoch !== generation) throw signedOutError();
    throw error;
  }
  if (epoch !== generation) throw signedOutError();
  if (response.status !== 401) return response;
  const auth = state.auth;
  if (!retried && auth && auth.mode === "cognito" && auth.refresh) {
    try {
      await refreshCognito();
      return authedFetch(url, init, true);
    } catch (error) {
      if (error.code === "signed_out") throw error; // else: signed out below
    }
  }
  signedOut("Your sign-in expired or was refused. Sign in again.");
  throw new ApiError(401, "unauthorized", "Signed out.");
}

/** The API's error body ({error: {code, message}}) as an ApiError, with Retry-After. */
export async function errorOf(response) {
  const body = await response.json().catch(() => null);
  const error = (body && body.error) || {};
  const retryAfter = Number(response.headers.get("Retry-After")) || undefined;
  return new ApiError(
    response.status,
    error.code || "http_" + response.status,
    error.message || (body && body.message) || `The server answered ${response.status}.`,
    { retryAfter },
  );
}

function base(url) {
  return (url || "").replace(/\/+$/, "");
}

/** A call of the REST API (config.api_url): its JSON, or null for a 204. */
export async function api(method, path, { query, body } = {}) {
  const url = new URL(base(state.config.api_url) + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(key, value);
  }
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const epoch = generation;
  const response = await authedFetch(url, init);
  if (!response.ok) throw await errorOf(response);
  const answer = response.status === 204 ? null : await response.json();
  if (epoch !== generation) throw signedOutError();
  return answer;
}

/** A URL of the chat function (config.chat_url): turns and their resumption. */
export function chatUrl(path) {
  return new URL(base(state.config.chat_url) + path, location.origin);
}
