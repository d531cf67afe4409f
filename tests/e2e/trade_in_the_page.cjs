// Drives the 호가창 in headless Chromium: a resting limit order shows in the ladder and the open
// orders, a dropped connection comes back by itself and resumes the book from its seq, a crossing
// order trades, and the trade, both fills and the chart show it; a cancel button cancels; then the
// form's market, IOC, FOK and post-only outcomes (order_form_outcomes.cjs). Prints one JSON
// line; exits non-zero with the step that failed. Called by tests/e2e/test_page.py.
//   node trade_in_the_page.cjs PAGE_URL SCREENSHOT_PATH   (PLAYWRIGHT_CORE, CHROMIUM in the env)
// Screenshots: SCREENSHOT_PATH after the trade, and beside it *-resting.png with the order resting.

const { chromium } = require(process.env.PLAYWRIGHT_CORE);
const orderFormOutcomes = require("./order_form_outcomes.cjs");

const [pageUrl, screenshotPath] = process.argv.slice(2);
const STEP_MS = 30000;
const PRICE = "64000.00";
const QTY = "0.01000";

const CANCEL_PRICE = "63000.00";

async function placeOrder(page, side, price = PRICE) {
  await page.check(`input[name=side][value=${side}]`);
  await page.selectOption("select[name=type]", "limit");
  await page.fill("input[name=price]", price);
  await page.fill("input[name=quantity]", QTY);
  await page.click("#place");
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox"], // the test may run as root, where Chromium's sandbox refuses to start
  });
  const errors = [];
  let step = "open the page";
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.setDefaultTimeout(STEP_MS);
    page.on("pageerror", (error) => errors.push(String(error)));
    // Watch the page's WebSockets from outside it: the sockets it opened and the frames it sent.
    await page.addInitScript(() => {
      const Native = window.WebSocket;
      window.testSockets = [];
      window.testSent = [];
      window.WebSocket = class extends Native {
        constructor(...args) {
          super(...args);
          window.testSockets.push(this);
        }
        send(data) {
          window.testSent.push(JSON.parse(data));
          super.send(data);
        }
      };
    });
    await page.goto(pageUrl);
    step = "connect and load the demo key";
    await page.waitForSelector("#connection[data-state=live]");
    await page.waitForSelector("#key-state:has-text('demo')", { state: "attached" }); // in a closed <details>
    await page.waitForSelector("#ladder[data-seq]");

    step = "rest a buy in the ladder and the open orders";
    await placeOrder(page, "buy");
    await page.waitForSelector(`#bids tr[data-price="${PRICE}"]`);
    await page.waitForSelector("#open-orders tbody tr");
    const resting = await page.textContent(`#bids tr[data-price="${PRICE}"] .size`);
    const candlesBefore = Number(await page.getAttribute("#chart", "data-candles"));

    step = "lose the connection: reconnect by itself and resume the book from its seq";
    await page.evaluate(() => window.testSockets.at(-1).close());
    await page.waitForFunction(() => window.testSockets.length >= 2
      && document.querySelector("#connection").dataset.state === "live");
    await page.waitForFunction(() => window.testSent.some((frame) => frame.resume_seq !== undefined));
    await page.waitForSelector(`#bids tr[data-price="${PRICE}"]`);
    const resumed = await page.evaluate(() => window.testSent.find((frame) => frame.resume_seq !== undefined));
    await page.screenshot({ path: screenshotPath.replace(/\.png$/, "-resting.png"), fullPage: true });

    step = "cross it with a sell: trade, fills, chart";
    await placeOrder(page, "sell");
    await page.waitForSelector(`#trades tbody tr[data-price="${PRICE}"]`);
    await page.waitForFunction(() => document.querySelectorAll("#fills tbody tr").length >= 2);
    await page.waitForSelector(`#chart[data-last-close="${PRICE}"]`);
    await page.waitForSelector(`#bids tr[data-price="${PRICE}"]`, { state: "detached" });
    await page.waitForFunction(() => document.querySelectorAll("#open-orders tbody tr").length === 0);
    const fills = await page.$$eval("#fills tbody tr", (rows) => rows.map((row) => row.innerText));
    const candlesAfter = Number(await page.getAttribute("#chart", "data-candles"));

    step = "cancel a resting order with its button";
    await placeOrder(page, "buy", CANCEL_PRICE);
    await page.waitForSelector(`#bids tr[data-price="${CANCEL_PRICE}"]`);
    await page.click("#open-orders button.cancel");
    await page.waitForSelector(`#bids tr[data-price="${CANCEL_PRICE}"]`, { state: "detached" });
    await page.waitForFunction(() => document.querySelectorAll("#open-orders tbody tr").length === 0);

    step = "the order form's other kinds";
    const outcomeStep = { name: "" };
    let form;
    try {
      form = await orderFormOutcomes(page, outcomeStep);
    } finally {
      step = `the order form: ${outcomeStep.name}`;
    }

    step = "save the screenshot";
    await page.screenshot({ path: screenshotPath, fullPage: true });
    console.log(JSON.stringify({
      ok: errors.length === 0, resting, resumed, fills, candlesBefore, candlesAfter, form, errors,
    }));
    process.exitCode = errors.length === 0 ? 0 : 1;
  } catch (error) {
    console.log(JSON.stringify({ ok: false, step, error: String(error), errors }));
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main();
