// A Server-Sent Events parser, as the HTML standard describes it (no DOM, no network): fetch's
// body in, events out. EventSource cannot send a bearer token, so the page reads streams itself.
//
// Each event is {name, data, id, lastEventId}:
// - `id` is the event's own `id:` field, or null when the event has none. Dedupe by it: a frame
//   without an id (the server's synthetic terminal `error`, e.g. `stream_incomplete`) is not one
//   of the turn's numbered events and must never be taken for the one before it.
// - `lastEventId` is the stream's last-event-id buffer, which persists across events as the
//   standard says (what EventSource would send as Last-Event-ID).

/** An incremental parser: `push(text)` returns the events its text completes. */
export function sseParser() {
  let buffer = "";
  let started = false;
  let lastEventId = "";
  let frame = { name: "", data: [], id: null };

  function line(text, events) {
    if (text === "") {
      if (frame.data.length) {
        const name = frame.name || "message";
        events.push({ name, data: frame.data.join("\n"), id: frame.id, lastEventId });
      }
      frame = { name: "", data: [], id: null };
      return;
    }
    if (text.startsWith(":")) return; // a comment: the keep-alive
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") frame.name = value;
    else if (field === "data") frame.data.push(value);
    else if (field === "id" && !value.includes("\0")) frame.id = lastEventId = value;
    // "retry" and unknown fields: ignored
  }

  return {
    push(text) {
      const events = [];
      buffer += text;
      if (!started && buffer) {
        started = true;
        if (buffer.startsWith("\uFEFF")) buffer = buffer.slice(1);
      }
      for (;;) {
        const end = /\r\n|\r|\n/.exec(buffer);
        if (!end) break;
        if (end[0] === "\r" && end.index === buffer.length - 1) break; // maybe half of \r\n
        line(buffer.slice(0, end.index), events);
        buffer = buffer.slice(end.index + end[0].length);
      }
      return events;
    },
  };
}

/** The events of a fetch body (a ReadableStream of bytes); an unfinished last frame is dropped,
 * as the standard says. Cancels the body when the caller stops early. */
export async function* sseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = sseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield* parser.push(value);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
