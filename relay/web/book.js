// A copy of one book kept as docs/websocket.md says: snapshots replace it, deltas must follow
// it (prev_seq), and the CRC32 of the best 25 levels must equal the message's checksum.
// Prices and sizes stay the strings the relay sent; they are compared as decimals, never floats.

/** Two decimal strings as integers of one scale: [a, b, digits after the point]. */
function onOneScale(a, b) {
  const [ai, af = ""] = a.split(".");
  const [bi, bf = ""] = b.split(".");
  const width = Math.max(af.length, bf.length);
  return [BigInt(ai + af.padEnd(width, "0")), BigInt(bi + bf.padEnd(width, "0")), width];
}

/** -1, 0 or 1 as the decimal string a is below, equal to or above b. */
export function compareDecimal(a, b) {
  const [x, y] = onOneScale(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** a - b for decimal strings, written with the larger of their fraction widths. */
export function subtractDecimal(a, b) {
  const [x, y, width] = onOneScale(a, b);
  const diff = x - y;
  const digits = (diff < 0n ? -diff : diff).toString().padStart(width + 1, "0");
  const whole = digits.slice(0, digits.length - width);
  const text = width ? `${whole}.${digits.slice(digits.length - width)}` : whole;
  return diff < 0n ? `-${text}` : text;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (zlib's polynomial) of a string's UTF-8 bytes, unsigned. */
export function crc32(text) {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export class BookCopy {
  constructor() {
    this.seq = null;
    this.bids = new Map(); // price string -> size string
    this.asks = new Map();
  }

  /** Apply a book message; false when it does not follow the copy or the checksum differs. */
  apply(message) {
    if (message.type === "book_snapshot") {
      this.bids = new Map();
      this.asks = new Map();
    } else if (message.prev_seq !== this.seq) {
      return false;
    }
    setLevels(this.bids, message.bids);
    setLevels(this.asks, message.asks);
    this.seq = message.seq;
    return this.checksum() === message.checksum;
  }

  /** Bids best (highest) first, asks best (lowest) first: [[price, size], …]. */
  sides() {
    const bids = [...this.bids].sort(([a], [b]) => compareDecimal(b, a));
    const asks = [...this.asks].sort(([a], [b]) => compareDecimal(a, b));
    return { bids, asks };
  }

  checksum() {
    const { bids, asks } = this.sides();
    const parts = [];
    for (let i = 0; i < 25; i += 1) {
      if (i < bids.length) parts.push(bids[i][0], bids[i][1]);
      if (i < asks.length) parts.push(asks[i][0], asks[i][1]);
    }
    return crc32(parts.join(":"));
  }
}

function setLevels(side, levels) {
  for (const [price, size] of levels) {
    if (compareDecimal(size, "0") === 0) side.delete(price);
    else side.set(price, size);
  }
}
