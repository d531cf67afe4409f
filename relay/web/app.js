// The 호가창: one symbol's live book, candles, trades and ticker from the relay's /ws, orders
// placed and cancelled on the gateway with the API key, and the account's fills pushed live.
// Prices and sizes are shown as the strings the relay and the gateway sent.

import { BookCopy, compareDecimal, subtractDecimal } from "./book.js";
import { drawCandles } from "./chart.js";
import { signedHeaders, signedText, sign } from "./signing.js";

const LADDER_DEPTH = 15;
const KEPT_ROWS = 50;
const RECONNECT_MAX_MS = 5000;
const KEY_STORAGE = "hoga.key";
const API = "/api/v1";

const $ = (selector) => document.querySelector(selector);
const symbol = new URLSearchParams(location.search).get("symbol") || "BTC-USD";
const page = {
  config: null, // {gateway, key, secret}: the local demo key, or one pasted into this tab
  socket: null,
  book: new BookCopy(),
  candles: [],
  nextId: 1,
  reconnectMs: 250,
};

// --- the API key ---------------------------------------------------------------------------------

/** The local cluster's config (the relay gives it to loopback clients only), else this tab's key. */
async function loadConfig() {
  try {
    const response = await fetch("/config.json", { cache: "no-store" });
    if (response.ok) return { ...(await response.json()), source: "local demo key" };
  } catch { /* no local config: fall through */ }
  const stored = sessionStorage.getItem(KEY_STORAGE);
  return stored ? { ...JSON.parse(stored), source: "this tab" } : null;
}

function useKeyFromForm(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const config = { gateway: form.get("gateway").replace(/\/$/, ""), key: form.get("key"), secret: form.get("secret") };
  // sessionStorage: the secret lives as long as this tab, never in a file or a cookie.
  sessionStorage.setItem(KEY_STORAGE, JSON.stringify(config));
  page.config = { ...config, source: "this tab" };
  showKey();
  if (page.socket) page.socket.close(); // reconnect to authenticate with the new key
  refreshOpenOrders();
}

function showKey() {
  $("#key-state").textContent = page.config ? `${page.config.key} (${page.config.source})` : "none: paste one";
  $("#place").disabled = !page.config;
}

// --- the gateway ---------------------------------------------------------------------------------

/** A signed request to the gateway; the answer's JSON, or an Error with the gateway's code. */
async function gatewayRequest(method, path, query = "", payload = undefined) {
  const { gateway, key, secret } = page.config;
  const body = payload === undefined ? "" : JSON.stringify(payload);
  const headers = await signedHeaders(key, secret, { timestampMs: Date.now(), method, path, query, body });
  if (body) headers["Content-Type"] = "application/json";
  const response = await fetch(`${gateway}${path}${query ? `?${query}` : ""}`, {
    method, headers, body: body || undefined,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new GatewayError(response.status, answer.code ?? "", answer.message ?? "");
  return answer;
}

/** The gateway's refusal: its HTTP status, its code (UPPER_SNAKE) and its one line. */
class GatewayError extends Error {
  constructor(status, code, message) {
    super(`${status} ${code} ${message}`.trim());
    this.status = status;
    this.code = code;
  }
}

// What a refusal means for the order, where the gateway's code alone says little to a person.
const REFUSALS = {
  POST_ONLY_WOULD_TAKE: "refused: post-only would have crossed the book, nothing traded",
  TOO_MANY_OPEN_ORDERS: "refused: as many open orders as the symbol allows",
};

async function placeOrder(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const order = {
    symbol,
    side: form.get("side"),
    type: form.get("type"),
    quantity: form.get("quantity").trim(),
    time_in_force: form.get("time_in_force"),
    post_only: form.get("post_only") === "on",
  };
  if (order.type === "limit") order.price = form.get("price").trim();
  // A market order never rests: "GTC" in the form means "what is there now" (IOC).
  if (order.type === "market" && order.time_in_force === "GTC") order.time_in_force = "IOC";
  const result = $("#order-result");
  showOutcome(result, { status: "sending" }, "sending…");
  try {
    const placed = await gatewayRequest("POST", `${API}/orders`, "", order);
    showOutcome(result, placed, describePlaced(placed, order.time_in_force));
  } catch (error) {
    const refusal = REFUSALS[error.code];
    const text = refusal ? `${refusal} (${error.code})` : error.message;
    showOutcome(result, { status: error instanceof GatewayError ? "rejected" : "error", code: error.code }, text);
  }
  refreshOpenOrders();
}

/** One line on what became of a placed order: traded, resting, and a remainder IOC cancelled. */
function describePlaced(placed, timeInForce) {
  const head = `${placed.status} ${placed.side ?? ""} ${placed.quantity ?? ""} @ ${placed.price ?? "market"}`;
  if (placed.status === "pending") return `${head}: in the log, its outcome comes with the executions`;
  const cancelled = cancelledQuantity(placed);
  if (timeInForce === "FOK" && compareDecimal(cancelled, "0") > 0) {
    return `${head}: killed, fill-or-kill could not fill in full; nothing traded`;
  }
  const parts = [`${head}: filled ${placed.filled ?? "0"}`];
  if (placed.average_price) parts.push(`avg ${placed.average_price}`);
  if (compareDecimal(cancelled, "0") > 0) parts.push(`remainder ${cancelled} cancelled (${timeInForce})`);
  else if (compareDecimal(placed.remaining ?? "0", "0") > 0) parts.push(`${placed.remaining} resting`);
  return parts.join(", ");
}

/** What of a finished order did not trade (its `remaining` is 0 once it is closed): quantity - filled. */
function cancelledQuantity(placed) {
  const closed = placed.status === "CANCELLED" || placed.status === "EXPIRED";
  return closed && placed.quantity ? subtractDecimal(placed.quantity, placed.filled ?? "0") : "0";
}

function showOutcome(output, outcome, text) {
  output.textContent = text;
  output.dataset.status = outcome.status;
  output.dataset.code = outcome.code ?? "";
  output.dataset.filled = outcome.filled ?? "";
  output.dataset.remaining = outcome.remaining ?? "";
  output.dataset.cancelled = cancelledQuantity(outcome);
}

async function refreshOpenOrders() {
  if (!page.config) return;
  try {
    const { orders } = await gatewayRequest("GET", `${API}/orders`, `symbol=${encodeURIComponent(symbol)}`);
    renderOpenOrders(orders);
  } catch (error) {
    $("#order-result").textContent = `open orders: ${error.message}`;
  }
}

async function cancelOrder(orderId) {
  try {
    await gatewayRequest("DELETE", `${API}/orders/${orderId}`, `symbol=${encodeURIComponent(symbol)}`);
  } catch (error) {
    $("#order-result").textContent = `cancel: ${error.message}`;
  }
  refreshOpenOrders();
}

// --- the relay -----------------------------------------------------------------------------------

function send(request) {
  page.socket.send(JSON.stringify({ ...request, id: page.nextId++ }));
}

function connect() {
  setConnection("connecting");
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  page.socket = socket;
  socket.onopen = () => {
    page.reconnectMs = 250;
    setConnection("live");
    subscribeBook();
    for (const channel of ["trades", "ticker", "candles"]) send({ op: "subscribe", channel, symbol });
    if (page.config) authenticate();
  };
  socket.onmessage = (event) => onMessage(JSON.parse(event.data));
  socket.onclose = () => {
    setConnection("reconnecting");
    // Back off up to a few seconds; the book resumes from its last seq when the relay still can.
    setTimeout(connect, page.reconnectMs);
    page.reconnectMs = Math.min(page.reconnectMs * 2, RECONNECT_MAX_MS);
  };
}

function subscribeBook() {
  const request = { op: "subscribe", channel: "book", symbol, depth: 25 };
  if (page.book.seq !== null) request.resume_seq = page.book.seq;
  send(request);
}

async function authenticate() {
  const timestamp = String(Date.now());
  // The relay checks it as the gateway would check a signed `GET /ws` with no query and no body.
  const signature = await sign(page.config.secret, signedText(timestamp, "GET", "/ws", "", ""));
  send({ op: "auth", key: page.config.key, timestamp, signature });
}

function onMessage(message) {
  switch (message.type) {
    case "book_snapshot":
    case "book":
      if (page.book.apply(message)) renderLadder();
      else resubscribeBook();
      break;
    case "trade": addTrade(message); break;
    case "ticker": renderTicker(message); break;
    case "candles": page.candles = message.candles; drawCandles($("#chart"), page.candles); break;
    case "candle": updateCandle(message); break;
    case "authenticated": send({ op: "subscribe", channel: "executions" }); refreshOpenOrders(); break;
    case "execution": onExecution(message); break;
    case "error": console.warn("relay error", message); break;
    default: break; // subscribed, heartbeat, pong, resync (a snapshot follows)
  }
}

/** The copy went wrong (a gap or a checksum mismatch): start again from a fresh snapshot. */
function resubscribeBook() {
  page.book = new BookCopy();
  send({ op: "unsubscribe", channel: "book", symbol });
  subscribeBook();
}

function updateCandle(candle) {
  const last = page.candles[page.candles.length - 1];
  if (last && last.start === candle.start) page.candles[page.candles.length - 1] = candle;
  else page.candles.push(candle);
  page.candles = page.candles.slice(-60);
  drawCandles($("#chart"), page.candles);
}

function onExecution(execution) {
  if (execution.symbol !== symbol) return;
  if (execution.event === "fill") addFill(execution);
  refreshOpenOrders();
}

// --- rendering -----------------------------------------------------------------------------------

function setConnection(state) {
  const badge = $("#connection");
  badge.dataset.state = state;
  badge.textContent = state;
}

function renderLadder() {
  const { bids, asks } = page.book.sides();
  const shownAsks = asks.slice(0, LADDER_DEPTH).reverse(); // asks over bids, best ask next to the spread
  const shownBids = bids.slice(0, LADDER_DEPTH);
  // Bar widths are the only place sizes become numbers: a picture, not a price.
  const largest = Math.max(1e-12, ...[...shownAsks, ...shownBids].map(([, size]) => Number(size)));
  $("#asks").replaceChildren(...shownAsks.map((level) => ladderRow(level, largest)));
  $("#bids").replaceChildren(...shownBids.map((level) => ladderRow(level, largest)));
  $("#spread").textContent = bids.length && asks.length ? subtractDecimal(asks[0][0], bids[0][0]) : "–";
  $("#ladder").dataset.seq = String(page.book.seq);
}

function ladderRow([price, size], largest) {
  const row = document.createElement("tr");
  row.dataset.price = price;
  const bar = document.createElement("div");
  bar.className = "bar";
  bar.style.width = `${(Number(size) / largest) * 100}%`;
  row.append(cell(price, "price"), cell(size, "size"));
  row.lastChild.append(bar);
  return row;
}

function cell(text, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function timeOf(ts) {
  return new Date(ts / 1e6).toLocaleTimeString();
}

function prepend(tbody, row) {
  tbody.prepend(row);
  while (tbody.rows.length > KEPT_ROWS) tbody.deleteRow(-1);
}

function addTrade(trade) {
  const row = document.createElement("tr");
  row.dataset.price = trade.price;
  row.append(cell(timeOf(trade.ts)), cell(trade.price, trade.taker_side), cell(trade.qty), cell(trade.taker_side));
  prepend($("#trades tbody"), row);
}

function addFill(fill) {
  const row = document.createElement("tr");
  row.dataset.price = fill.price;
  row.append(cell(timeOf(fill.ts)), cell(fill.side, fill.side), cell(fill.price), cell(fill.qty), cell(fill.liquidity));
  prepend($("#fills tbody"), row);
}

function renderTicker(ticker) {
  const last = ticker.last ? ticker.last[0] : "–";
  const bid = ticker.bid ? ticker.bid[0] : "–";
  const ask = ticker.ask ? ticker.ask[0] : "–";
  $("#ticker").textContent = `${symbol}  last ${last}  bid ${bid}  ask ${ask}  24h ${ticker.volume_24h}${ticker.halted ? "  HALTED" : ""}`;
}

function renderOpenOrders(orders) {
  const rows = orders
    .slice()
    .sort((a, b) => compareDecimal(b.price ?? "0", a.price ?? "0"))
    .map((order) => {
      const row = document.createElement("tr");
      row.dataset.orderId = order.order_id;
      const button = document.createElement("button");
      button.className = "cancel";
      button.textContent = "cancel";
      button.onclick = () => cancelOrder(order.order_id);
      const action = cell("");
      action.append(button);
      row.append(cell(order.side, order.side), cell(order.price ?? "market"), cell(order.quantity), cell(order.remaining), action);
      return row;
    });
  $("#open-orders tbody").replaceChildren(...rows);
}

// --- start ---------------------------------------------------------------------------------------

async function start() {
  $("#symbol").value = symbol;
  $("#symbol-form").onsubmit = (event) => {
    event.preventDefault();
    location.search = `?symbol=${encodeURIComponent($("#symbol").value.trim())}`;
  };
  $("#order-form").onsubmit = placeOrder;
  $("#key-form").onsubmit = useKeyFromForm;
  page.config = await loadConfig();
  showKey();
  drawCandles($("#chart"), []);
  connect();
}

start();
