// Server-Sent Events over fetch(), so the bearer token travels in the Authorization
// header (EventSource cannot send one, and a token in the URL ends up in logs).
// onEvent(kind, data) gets "ready", "changed" (refetch the list) and "reconnect"
// (data.reason "token_expired": get a fresh token before reconnecting).
// Resolves when the stream ends; rejects with err.status 429/503/401 when refused.
async function streamEvents(url, token, lastEventId, onEvent, signal) {
  const headers = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
  if (lastEventId !== null) headers["Last-Event-ID"] = String(lastEventId);
  const response = await fetch(url, { headers, signal, cache: "no-store" });
  if (!response.ok) {
    const error = new Error(`stream refused: ${response.status}`);
    error.status = response.status;
    error.retryAfter = Number(response.headers.get("Retry-After") || 30);
    throw error;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", state = { lastEventId, retry: 3000 };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return state;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      const event = { kind: "message", data: "" };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;                // heartbeat comment
        const [field, ...rest] = line.split(":"); const v = rest.join(":").trimStart();
        if (field === "event") event.kind = v;
        else if (field === "data") event.data += v;
        else if (field === "id") state.lastEventId = Number(v);
        else if (field === "retry") state.retry = Number(v);
      }
      if (event.data) onEvent(event.kind, JSON.parse(event.data), state);
    }
  }
}
