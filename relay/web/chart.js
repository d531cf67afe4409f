// A small candlestick chart on a canvas, from the relay's 1-minute candles. Prices become pixel
// positions only here; every label shows the decimal strings as the relay sent them.

import { compareDecimal } from "./book.js";

const UP = "#1f9d55";
const DOWN = "#d64545";

/** Draw the candles (oldest first) into the canvas, scaled to their own high and low. */
export function drawCandles(canvas, candles) {
  const context = canvas.getContext("2d");
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  canvas.dataset.candles = String(candles.length);
  canvas.dataset.lastClose = candles.length ? candles[candles.length - 1].close : "";
  if (!candles.length) {
    context.fillStyle = "#888";
    context.fillText("no trades in the last hour", 12, height / 2);
    return;
  }
  const highs = candles.map((c) => Number(c.high));
  const lows = candles.map((c) => Number(c.low));
  const top = Math.max(...highs);
  const bottom = Math.min(...lows);
  const pad = 16;
  const span = top - bottom;
  // One price only (a single trade): a flat line across the middle.
  const y = (price) => (span ? pad + ((top - Number(price)) / span) * (height - 2 * pad) : height / 2);
  const slot = (width - 70) / Math.max(candles.length, 30);
  candles.forEach((candle, i) => {
    const x = 4 + i * slot + slot / 2;
    const rising = Number(candle.close) >= Number(candle.open);
    context.strokeStyle = context.fillStyle = rising ? UP : DOWN;
    context.beginPath();
    context.moveTo(x, y(candle.high));
    context.lineTo(x, y(candle.low));
    context.stroke();
    const bodyTop = Math.min(y(candle.open), y(candle.close));
    const bodyHeight = Math.max(Math.abs(y(candle.open) - y(candle.close)), 1);
    context.fillRect(x - slot * 0.35, bodyTop, slot * 0.7, bodyHeight);
  });
  const last = candles[candles.length - 1];
  context.fillStyle = "#ddd";
  context.fillText(last.close, width - 62, y(last.close) + 4);
  if (!span) return;
  context.fillStyle = "#888";
  context.fillText(highOf(candles), width - 62, pad);
  context.fillText(lowOf(candles), width - 62, height - pad + 8);
}

function highOf(candles) {
  return candles.reduce((best, c) => (compareDecimal(c.high, best) > 0 ? c.high : best), candles[0].high);
}

function lowOf(candles) {
  return candles.reduce((best, c) => (compareDecimal(c.low, best) < 0 ? c.low : best), candles[0].low);
}
