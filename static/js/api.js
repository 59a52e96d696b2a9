// REST calls. Every server error has the shape {"error": {"code", "message"}};
// this turns it (and network failures) into an ApiError the toast can show.

class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** Turn an ack/REST error body into an ApiError (or pass an ApiError through). */
export function toApiError(body, status) {
  if (body instanceof ApiError) return body;
  if (body && body.error) return new ApiError(body.error.code || "error", body.error.message || "", status);
  if (body instanceof Error) return new ApiError("network", body.message, status);
  return new ApiError("error", String(body), status);
}

export async function api(path, { method = "GET", body } = {}) {
  // Every POST is JSON, even an empty one: the server refuses anything else (a plain form
  // from another site must not be able to start or stop runs).
  const post = method !== "GET";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: post ? { "Content-Type": "application/json" } : {},
      body: post ? JSON.stringify(body ?? {}) : undefined,
    });
  } catch (e) {
    throw new ApiError("network", `cannot reach the memdash server (${e.message})`);
  }
  let data = null;
  try { data = await res.json(); } catch { /* non-JSON body: handled below */ }
  if (!res.ok || (data && data.error)) {
    throw toApiError(data && data.error ? data : { error: { code: `http_${res.status}`, message: res.statusText } }, res.status);
  }
  return data;
}
