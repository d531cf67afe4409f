// The gateway's API key signature, made in the browser exactly as runtime/signing.py makes it:
// HMAC-SHA256(secret, timestamp + "\n" + METHOD + "\n" + path + "\n" + query + "\n" + body),
// lowercase hex. tests/unit/relay/test_web_signing.py runs this file in node against Python's.

const encoder = new TextEncoder();

/** The bytes a request's signature covers (body: the exact string sent, "" for GET and DELETE). */
export function signedText(timestamp, method, path, query, body) {
  return encoder.encode(`${timestamp}\n${method.toUpperCase()}\n${path}\n${query}\n${body}`);
}

/** Lowercase hex of HMAC-SHA256(secret, text), as the X-Signature header carries it. */
export async function sign(secret, text) {
  const key = await crypto.subtle.importKey(
    "raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, text));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The three headers of a signed request. */
export async function signedHeaders(keyId, secret, { timestampMs, method, path, query, body }) {
  const timestamp = String(timestampMs);
  return {
    "X-API-Key": keyId,
    "X-Timestamp": timestamp,
    "X-Signature": await sign(secret, signedText(timestamp, method, path, query, body)),
  };
}
