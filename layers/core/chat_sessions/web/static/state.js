// What the page's modules share: the config, who is signed in, the sidebar, the conversation
// shown and the turn streaming now. One object, so every module sees the same values.

export const AUTH_KEY = "chat-sessions.auth"; // sessionStorage: {mode, token, user, ...}
export const TURN_KEY = "chat-sessions.turn"; // sessionStorage: {session_id, turn_id, hide_from}

export const state = {
  config: null, // /page/config.json: {auth, api_url, chat_url, cognito?}
  auth: null, // {mode, token, user, refresh?, expires?}
  sessions: [], // the sidebar, most recent activity first
  nextCursor: undefined, // undefined: not loaded yet; null: the listing is complete
  loadingSessions: false,
  view: null, // the open conversation (conversation.js, newView)
  turn: null, // the turn streaming now (turns.js, newTurn)
  cognitoChallenge: null, // {session, username} while a new password is required
  refreshing: null, // the Cognito refresh in flight
};
