// The order form's other kinds in the 호가창, on a page that is already live with the demo key: a
// market order fills against a resting order and shows the fill; an IOC limit that cannot fill in
// full shows its remainder cancelled; a FOK that cannot fill in full shows it was killed with nothing
// traded; a post-only that would cross is refused with its reason, and one that would not rests in
// the ladder. Every order is the demo account's, against its own resting orders (no self-trade
// prevention), on prices of their own. Used by trade_in_the_page.cjs (one browser for both).

const QTY = "0.01000";
const DOUBLE = "0.02000";

/** Fill the form, place the order and wait for its outcome line: {status, code, filled, remaining, text}. */
async function submit(page, { side, type = "limit", price = "", quantity = QTY, tif = "GTC", postOnly = false }) {
  await page.check(`input[name=side][value=${side}]`);
  await page.selectOption("select[name=type]", type);
  await page.fill("input[name=price]", price);
  await page.fill("input[name=quantity]", quantity);
  await page.selectOption("select[name=time_in_force]", tif);
  await page.setChecked("input[name=post_only]", postOnly);
  await page.evaluate(() => { document.querySelector("#order-result").dataset.status = "idle"; });
  await page.click("#place");
  await page.waitForFunction(() => !["idle", "sending"].includes(document.querySelector("#order-result").dataset.status));
  return page.$eval("#order-result", (out) => ({ ...out.dataset, text: out.textContent }));
}

async function restingSell(page, price) {
  const rested = await submit(page, { side: "sell", price });
  await page.waitForSelector(`#asks tr[data-price="${price}"]`);
  return rested;
}

const fillRows = (page) => page.$$eval("#fills tbody tr", (rows) => rows.length);
const askSize = (page, price) => page.textContent(`#asks tr[data-price="${price}"] .size`);

/** Runs the four outcomes; ``step.name`` says which one is under way (for the caller's report). */
module.exports = async function orderFormOutcomes(page, step) {
  step.name = "a market order fills against a resting sell and shows the fill";
  const marketPrice = "64500.00";
  await restingSell(page, marketPrice);
  let fillsBefore = await fillRows(page);
  const market = await submit(page, { side: "buy", type: "market" });
  await page.waitForFunction((n) => document.querySelectorAll("#fills tbody tr").length >= n + 2, fillsBefore);
  await page.waitForSelector(`#asks tr[data-price="${marketPrice}"]`, { state: "detached" });
  const marketFill = await page.textContent("#fills tbody tr");

  step.name = "an IOC limit that cannot fill in full shows its remainder cancelled";
  const iocPrice = "64600.00";
  await restingSell(page, iocPrice);
  const ioc = await submit(page, { side: "buy", price: iocPrice, quantity: DOUBLE, tif: "IOC" });
  await page.waitForSelector(`#asks tr[data-price="${iocPrice}"]`, { state: "detached" });
  const iocRests = (await page.$(`#bids tr[data-price="${iocPrice}"]`)) !== null;

  step.name = "a FOK that cannot fill in full is killed with nothing traded";
  const fokPrice = "64700.00";
  await restingSell(page, fokPrice);
  fillsBefore = await fillRows(page);
  const fok = await submit(page, { side: "buy", price: fokPrice, quantity: DOUBLE, tif: "FOK" });

  step.name = "a post-only that would cross is refused with its reason";
  const crossing = await submit(page, { side: "buy", price: fokPrice, postOnly: true });

  step.name = "a post-only that would not cross rests in the ladder";
  const passivePrice = "63500.00";
  const passive = await submit(page, { side: "buy", price: passivePrice, postOnly: true });
  await page.waitForSelector(`#bids tr[data-price="${passivePrice}"]`);
  const passiveSize = await page.textContent(`#bids tr[data-price="${passivePrice}"] .size`);
  // Read once the last order shows: what the FOK or the refused post-only would have changed came first.
  const fokAskAfter = await askSize(page, fokPrice);
  const fokFills = (await fillRows(page)) - fillsBefore;

  return { market, marketFill, ioc, iocRests, fok, fokAskAfter, fokFills, crossing, passive, passiveSize };
};
