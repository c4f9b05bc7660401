// GET /v1/stream read with fetch, not EventSource: EventSource cannot send the
// Authorization header that the stream (like every data route) requires with keys
// configured, and a key in the URL would end up in logs and history. Resuming works
// as with EventSource: the last id seen goes back as Last-Event-ID.

import { authHeaders } from "./api.js";

// Nothing at all (not even the server's `: ping`, every 15 s by default) for this
// long means the connection is dead without having said so.
const SILENCE_LIMIT_MS = 45_000;
const RETRY_MIN_MS = 1_000;
const RETRY_MAX_MS = 5_000;

/** Splits a text stream into server-sent events (the WHATWG parsing rules, minus `retry`). */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = "";
    this.reset();
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = null;
  }

  push(text) {
    this.buffer += text;
    // A "\r" at the very end may be the first half of "\r\n": wait for what follows.
    const end = this.buffer.endsWith("\r") ? this.buffer.length - 1 : this.buffer.length;
    const lines = this.buffer.slice(0, end).split(/\r\n|\r|\n/);
    // The last piece has no line end yet.
    this.buffer = lines.pop() + this.buffer.slice(end);
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (this.data.length || this.event) {
        this.onEvent({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      }
      this.reset();
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
  }
}

/**
 * Follows the stream until `stop()`: reconnects by itself after any loss (network
 * error, server gone, server ending the stream) with a back-off of 1 to 5 s.
 * `onEvent({event, data, id})` gets every event; `onState(state, detail)` gets
 * "connecting", "live" (after the server's `ready`), "lost" (retrying) or
 * "refused" (401/403: no retry until `restart()`).
 */
export function follow(path, { onEvent, onState }) {
  let lastId = null;
  let attempt = 0;
  let controller = null;
  let timer = null;
  let stopped = false;
  // Each connection's number: a connection replaced by restart() must not retry.
  let generation = 0;

  function retry(mine, reason) {
    if (stopped || mine !== generation) return;
    attempt += 1;
    const delay = Math.min(RETRY_MIN_MS * 2 ** (attempt - 1), RETRY_MAX_MS);
    onState("lost", { reason, attempt, delay });
    timer = setTimeout(() => connect(mine), delay);
  }

  async function connect(mine) {
    timer = null;
    if (stopped || mine !== generation) return;
    const aborter = new AbortController();
    controller = aborter;
    const { signal } = aborter;
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    if (attempt === 0) onState("connecting", {});
    let response;
    try {
      response = await fetch(path, { headers, signal, cache: "no-store" });
    } catch {
      return retry(mine, "gateway unreachable");
    }
    if (response.status === 401 || response.status === 403) {
      onState("refused", { status: response.status });
      return;
    }
    if (!response.ok || !response.body) return retry(mine, `HTTP ${response.status}`);

    let silence = null;
    const watch = () => {
      clearTimeout(silence);
      silence = setTimeout(() => aborter.abort(), SILENCE_LIMIT_MS);
    };
    const parser = new SseParser((message) => {
      if (mine !== generation) return;
      if (message.id !== null) lastId = message.id;
      if (message.event === "ready") {
        attempt = 0;
        try {
          const ready = JSON.parse(message.data);
          if (lastId === null && ready.last_id !== undefined) lastId = String(ready.last_id);
        } catch {
          /* a ready without a body still means live */
        }
        onState("live", {});
      }
      onEvent(message);
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    watch();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        watch();
        parser.push(value);
      }
    } catch {
      /* aborted, or the connection broke: both mean retry */
    } finally {
      clearTimeout(silence);
    }
    retry(mine, signal.aborted ? "no data for 45 s" : "the gateway ended the stream");
  }

  connect(generation);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (controller) controller.abort();
    },
    /** Reconnects now (a new key, or the page came back to the foreground). */
    restart() {
      clearTimeout(timer);
      generation += 1;
      if (controller) controller.abort();
      stopped = false;
      attempt = 0;
      connect(generation);
    },
  };
}
