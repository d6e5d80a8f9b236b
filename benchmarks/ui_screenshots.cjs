// Screenshots of the pages a user opens in `dlsuite ui`, taken the way a user gets there: by clicking.
//
// A fresh browser profile (no local storage: a first visit) opens the landing page, the experiments
// list, an experiment, one of its runs, the run's model metrics and one of its artifact figures.
//
//   dlsuite ui --port 5000 &                                   # a store with a few runs
//   npm install --prefix /tmp/pw playwright-core               # once; Chromium from the system (Debian: chromium)
//   NODE_PATH=/tmp/pw/node_modules node benchmarks/ui_screenshots.cjs http://127.0.0.1:5000 /tmp/ui-evidence \
//       dlsuite-vision test_samples.png
//
// Arguments: the UI's address, the folder for the PNGs, the experiment to open (default: the first
// dlsuite- one) and the artifact to show (default: learning_curves.png). CHROMIUM names the browser
// (default: chromium on the PATH's usual place, /usr/bin/chromium).
const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const [base = "http://127.0.0.1:5000", folder = "ui-evidence", experiment = "dlsuite-", artifact = "learning_curves.png"] =
  process.argv.slice(2);
const WAIT = 60000;

async function shot(page, name, what) {
  await page.waitForLoadState("networkidle", { timeout: WAIT }).catch(() => {});
  await page.waitForTimeout(1500); // charts animate in
  const file = path.join(folder, name);
  await page.screenshot({ path: file });
  const view = await page.evaluate(() => localStorage.getItem("mlflow.workflowType_v1"));
  const genai = await page.getByText("Evaluation runs").count(); // the GenAI sidebar's entry
  console.log(`${file}: ${what}; ${page.url()}; stored view ${view}; GenAI sidebar ${genai ? "shown" : "absent"}`);
}

(async () => {
  fs.mkdirSync(folder, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } }); // a fresh profile
  try {
    await page.goto(`${base}/`, { timeout: WAIT });
    await shot(page, "1-landing.png", "the landing page, a bare /");

    await page.getByRole("link", { name: "Experiments", exact: true }).first().click({ timeout: WAIT });
    await page.getByRole("link", { name: new RegExp(`^${experiment}`) }).first().click({ timeout: WAIT });
    await page.locator('a[href*="/runs/"]').first().waitFor({ timeout: WAIT });
    await shot(page, "2-experiment.png", `the experiment, clicked in the experiments list`);

    await page.locator('a[href*="/runs/"]').first().click({ timeout: WAIT });
    await page.getByRole("tab", { name: /Model metrics/ }).waitFor({ timeout: WAIT });
    await shot(page, "3-run.png", "a run, clicked in the experiment's runs list");

    await page.getByRole("tab", { name: /Model metrics/ }).click();
    await shot(page, "4-model-metrics.png", "the run's Model metrics tab");

    await page.getByRole("tab", { name: /Artifacts/ }).click();
    await page.getByText(artifact, { exact: true }).first().click({ timeout: WAIT });
    await page.locator('img[src^="blob:"]').first().waitFor({ state: "attached", timeout: WAIT });
    await shot(page, "5-artifact.png", `the run's artifact ${artifact}`);
    const stored = await page.evaluate(() => Object.fromEntries(Object.keys(localStorage).sort()
      .filter((key) => key.startsWith("mlflow.")).map((key) => [key, localStorage.getItem(key)])));
    console.log(`local storage after the visit: ${JSON.stringify(stored)}`);
  } finally {
    await browser.close();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
