// The one client of the spaces JSON API used by the app's pages.
//
// The browser sends the service's HubOAuth cookie; every request also carries the
// X-XSRFToken header the service checks for cookie-authenticated requests (fetches
// are never exempt). Errors become ApiError with the service's message and per-field
// messages, so forms can show them next to the field.

const config = JSON.parse(document.getElementById("spaces-config").textContent);

export { config };

export class ApiError extends Error {
  constructor(status, message, fields) {
    super(message);
    this.status = status;
    this.fields = fields || {};
  }
}

function url(path) {
  return config.api + path.replace(/^\//, "");
}

function headers(extra) {
  return Object.assign({ Accept: "application/json", "X-XSRFToken": config.xsrf }, extra || {});
}

async function fail(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.message) {
      return new ApiError(response.status, body.message, body.fields);
    }
  } catch (e) {
    // not JSON: a proxy or hub page; say what happened
  }
  if (response.status === 401 || response.status === 403) {
    return new ApiError(response.status, "Your login has expired: reload the page to log in again.");
  }
  return new ApiError(response.status, `The spaces service answered ${response.status} ${response.statusText}.`);
}

/** JSON request; resolves to the parsed answer (null for 204). */
export async function api(path, method = "GET", body) {
  const init = { method, headers: headers(), credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path), init);
  } catch (e) {
    throw new ApiError(0, "The spaces service cannot be reached: check your connection and retry.");
  }
  if (!response.ok) {
    throw await fail(response);
  }
  if (response.status === 204) {
    return null;
  }
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Every item of a paginated list (follows `next` up to `max` items). */
export async function all(path, max = 2000) {
  const out = [];
  let next = path + (path.includes("?") ? "&" : "?") + "limit=500";
  while (next && out.length < max) {
    const page = await api(next);
    if (Array.isArray(page)) {
      return page;
    }
    out.push(...(page.items || []));
    next = page.next ? page.next.replace(/^.*?\/api\/v1\//, "") : null;
  }
  return out;
}

/**
 * Read a server-sent event stream with fetch (so the XSRF header goes along).
 * Calls onEvent(data) for each JSON event; resolves when the stream ends.
 * Returns an object whose abort() stops reading.
 */
export function stream(path, onEvent) {
  const controller = new AbortController();
  const done = (async () => {
    const response = await fetch(url(path), {
      headers: headers({ Accept: "text/event-stream" }),
      credentials: "same-origin",
      signal: controller.signal,
    });
    if (!response.ok) {
      throw await fail(response);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const chunk = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        const data = chunk
          .split(/\r?\n/)
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (!data) continue;
        let event;
        try {
          event = JSON.parse(data);
        } catch (e) {
          event = { message: data };
        }
        onEvent(event);
      }
    }
  })();
  return { done, abort: () => controller.abort() };
}
