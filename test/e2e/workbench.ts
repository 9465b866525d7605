/**
 * A real VS Code workbench for end-to-end tests: code-server on 127.0.0.1 with a fresh user-data
 * folder, the packaged VSIX installed into it, and Chromium driving it through playwright-core as
 * a person would (command palette, quick picks, notifications, views).
 *
 * `npm run test:e2e` (test/e2e/run.ts) installs code-server and packages the VSIX first.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type { TestContext } from 'node:test';
import { Browser, chromium, Frame, Locator, Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../browser/page';
import { ROOT } from './fixtures';
import { languagePackVsix, registerLanguagePack } from './language-pack';

export const VSIX = path.join(ROOT, 'rlhf-studio-linux-x64.vsix');
export const CODE_SERVER_VERSION = '4.100.3';
/** code-server's entry point, as scripts/install-code-server.sh installs it. */
export const CODE_SERVER = path.join(
  ROOT,
  '.cache',
  'code-server',
  CODE_SERVER_VERSION,
  'node_modules',
  'code-server',
  'out',
  'node',
  'entry.js',
);
/** Screenshots and logs of failed scenarios (git-ignored). */
export const RESULTS = path.join(ROOT, 'test-results', 'e2e');

/** Waits in the UI are generous: CI has two cores shared with the training processes. */
const UI_TIMEOUT = 30_000;

/**
 * Settings of the fresh profile: no welcome pages or update checks in the way, and training on the
 * CPU (CI has no GPU; `auto` would first try WebGPU on a software Vulkan driver).
 */
const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'workbench.tips.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'security.workspace.trust.enabled': false,
  'rlhf.executionProvider': 'cpu',
  // Quality checks come back at random; the labeling tests follow a known sequence of pairs.
  'rlhf.labeling.checkRate': 0,
};

export interface WorkbenchOptions {
  /**
   * A bundled extension test module (`export async function run()`) for the extension host to run
   * once the workbench is up, with the installed VSIX as the extension under development.
   */
  extensionTests?: string;
  /** VS Code's display language ("zh-cn"), with a language pack for it installed (./language-pack.ts). */
  locale?: string;
}

export class Workbench {
  /** The page's console, the extension host's included (it is forwarded there). */
  readonly console: string[] = [];

  private constructor(
    readonly page: Page,
    /** The folder open in the workbench. */
    readonly workspace: string,
    private readonly home: string,
    private readonly server: ChildProcess,
    private readonly browser: Browser,
    private readonly serverLog: string,
  ) {}

  /** Starts code-server with the VSIX installed and `workspace` open, and a browser on it. */
  static async open(workspace: string, options: WorkbenchOptions = {}): Promise<Workbench> {
    if (!fs.existsSync(CODE_SERVER))
      throw new Error(`code-server is not installed at ${CODE_SERVER}: run bash scripts/install-code-server.sh`);
    if (!fs.existsSync(VSIX)) throw new Error(`${VSIX} is missing: run npm run package`);
    if (!CHROMIUM) throw new Error('no Chromium found: apt-get install chromium, or set CHROMIUM_PATH');
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-e2e-'));
    const dirs = { userData: path.join(home, 'user-data'), extensions: path.join(home, 'extensions') };
    fs.mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
    fs.writeFileSync(path.join(dirs.userData, 'User', 'settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
    const env = serverEnv(home);
    const common = ['--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions];

    const vsixes = [VSIX, ...(options.locale ? [await languagePackVsix(options.locale, home)] : [])];
    for (const vsix of vsixes) {
      const install = spawnSync(process.execPath, [CODE_SERVER, ...common, '--install-extension', vsix], {
        env,
        encoding: 'utf8',
        timeout: 120_000,
      });
      if (install.status !== 0 || !/successfully installed/.test(install.stdout)) {
        fs.rmSync(home, { recursive: true, force: true });
        throw new Error(`installing ${vsix} into code-server failed:\n${install.stdout}\n${install.stderr}`);
      }
    }

    if (options.locale) registerLanguagePack(dirs.userData, dirs.extensions, options.locale);
    const port = await freePort();
    const serverLog = path.join(home, 'code-server.log');
    const logFd = fs.openSync(serverLog, 'w');
    const server = spawn(
      process.execPath,
      [
        CODE_SERVER,
        ...common,
        '--auth',
        'none',
        '--bind-addr',
        `127.0.0.1:${port}`,
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--disable-getting-started-override',
        ...(options.locale ? ['--locale', options.locale] : []),
      ],
      // Its own process group, so closing kills the extension host and the training processes with it.
      { env, detached: true, stdio: ['ignore', logFd, logFd] },
    );
    fs.closeSync(logFd);
    const origin = `http://127.0.0.1:${port}`;
    let browser: Browser | undefined;
    try {
      await waitForHealth(origin, server, serverLog);
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
      const workbench = new Workbench(page, workspace, home, server, browser, serverLog);
      page.on('console', (message) => workbench.console.push(message.text()));
      const query = new URLSearchParams({ folder: workspace });
      if (options.extensionTests) {
        // How VS Code in a browser is told to run extension tests: URIs on the server, in `payload`.
        const remote = (file: string) => `vscode-remote://127.0.0.1:${port}${file}`;
        const installed = fs.readdirSync(dirs.extensions).find((d) => d.startsWith('rlhf-studio.rlhf-studio-'));
        if (!installed) throw new Error(`the VSIX is not in ${dirs.extensions}`);
        query.set(
          'payload',
          JSON.stringify([
            ['extensionDevelopmentPath', remote(path.join(dirs.extensions, installed))],
            ['extensionTestsPath', remote(options.extensionTests)],
          ]),
        );
      }
      await page.goto(`${origin}/?${query}`);
      await workbench.waitUntilReady();
      return workbench;
    } catch (e) {
      await browser?.close();
      await killGroup(server);
      const log = fs.readFileSync(serverLog, 'utf8');
      fs.rmSync(home, { recursive: true, force: true });
      throw new Error(`${(e as Error).message}\ncode-server log:\n${log}`);
    }
  }

  /** The workbench is up and this extension's view container is in the activity bar. */
  private async waitUntilReady(): Promise<void> {
    await this.page.locator('.monaco-workbench .part.statusbar').waitFor({ timeout: 60_000 });
    await this.activityTab('RLHF').waitFor({ timeout: 60_000 });
  }

  activityTab(name: string): Locator {
    return this.page.locator('.part.activitybar').getByRole('tab', { name: new RegExp(`^${name}\\b`) });
  }

  /**
   * Runs a command from the palette by its full title ("RLHF: New Experiment"). The palette lists
   * the commands known when it opens: just after a reload, before the extensions' contributions
   * are read, it is opened again. A key pressed while a webview's frame is taking focus can be lost
   * with it: F1 is pressed again when the palette does not open.
   */
  async command(title: string, attempts = 3): Promise<void> {
    const wait = attempts > 1 ? UI_TIMEOUT / 3 : UI_TIMEOUT;
    const input = this.quickInput();
    const row = this.page.locator('.quick-input-list .monaco-list-row.focused', { hasText: title });
    try {
      await this.page.keyboard.press('F1');
      await input.waitFor({ timeout: wait });
      await input.fill(`>${title}`);
      await row.waitFor({ timeout: wait });
    } catch (e) {
      if (attempts <= 1) throw e;
      if (await input.isVisible()) await input.press('Escape');
      return this.command(title, attempts - 1);
    }
    await input.press('Enter');
  }

  quickInput(): Locator {
    return this.page.locator('.quick-input-widget input.input');
  }

  /** Picks the item containing `text` from the open quick pick. */
  async pick(text: string, timeout = UI_TIMEOUT): Promise<void> {
    await this.page.locator('.quick-input-widget .monaco-list-row', { hasText: text }).click({ timeout });
  }

  /**
   * Runs a command that asks for an item and picks the one containing `text`. A quick pick closes
   * when the focus moves (a webview loading beside it), so one closed before the pick is asked again.
   */
  async commandAndPick(title: string, text: string, attempts = 3): Promise<void> {
    await this.command(title);
    try {
      await this.pick(text, attempts > 1 ? UI_TIMEOUT / 3 : UI_TIMEOUT);
    } catch (e) {
      if (attempts <= 1) throw e;
      await this.page.keyboard.press('Escape');
      return this.commandAndPick(title, text, attempts - 1);
    }
  }

  /** Answers the open input box with `value` (or accepts its default). */
  async answer(value?: string): Promise<void> {
    const input = this.quickInput();
    await input.waitFor({ timeout: UI_TIMEOUT });
    if (value !== undefined) await input.fill(value);
    await input.press('Enter');
  }

  /** A notification toast containing `text`. */
  notification(text: string | RegExp): Locator {
    return this.page.locator('.notification-toast', { hasText: text });
  }

  /**
   * The notification containing `text`, from the notification center: VS Code drops toasts that
   * come in quick succession (a run that fails at once), but the center lists every notification.
   */
  async notificationInCenter(text: string | RegExp): Promise<Locator> {
    await this.command('Notifications: Show Notifications');
    const item = this.page.locator('.notifications-center .notification-list-item', { hasText: text });
    await item.waitFor({ timeout: UI_TIMEOUT });
    return item;
  }

  /** Clicks `button` on the notification containing `text`. */
  async clickNotification(text: string | RegExp, button: string): Promise<void> {
    await this.notification(text).getByRole('button', { name: button }).click({ timeout: UI_TIMEOUT });
  }

  /** Shows the RLHF view container in the side bar. */
  async openRlhfViews(): Promise<void> {
    const tab = this.activityTab('RLHF');
    if ((await tab.getAttribute('aria-selected')) !== 'true') await tab.click();
    await this.page.locator('.pane-header', { hasText: 'Runs' }).waitFor({ timeout: UI_TIMEOUT });
  }

  /** Rows of the Runs view. */
  runRows(text?: string | RegExp): Locator {
    const pane = this.page
      .locator('.part.sidebar .pane')
      .filter({ has: this.page.locator('.pane-header', { hasText: /^Runs/ }) });
    return pane.locator('.monaco-list-row[role="treeitem"]', text === undefined ? {} : { hasText: text });
  }

  /**
   * The page of this extension's webview whose <title> is `title`, once it has loaded. Webviews are
   * two iframes deep and their iframes carry no name, so the page is found by its document title.
   * A reload or a hidden view replaces the frame: look it up again after either.
   */
  async webview(title: string, timeoutMs = UI_TIMEOUT): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const frame of this.page.frames()) {
        if (frame.parentFrame() && (await frame.title().catch(() => '')) === title) return frame;
      }
      if (Date.now() > deadline) throw new Error(`no webview titled "${title}" within ${timeoutMs / 1000}s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /**
   * The webview titled `title` once it has stayed in one place for `quietMs`: Open Labeling moves
   * a Labeling view that does not fit to the panel (src/views/labeling/room.ts) a moment after it
   * shows, which replaces its frame.
   */
  async settledWebview(title: string, quietMs = 4000): Promise<Frame> {
    const deadline = Date.now() + UI_TIMEOUT;
    let frame = await this.webview(title);
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, quietMs));
      const now = await this.webview(title);
      if (now === frame && !frame.isDetached()) return frame;
      if (Date.now() > deadline) throw new Error(`the webview titled "${title}" kept moving`);
      frame = now;
    }
  }

  async reload(): Promise<void> {
    await this.command('Developer: Reload Window');
    await this.page.waitForEvent('load', { timeout: 60_000 });
    await this.waitUntilReady();
  }

  /**
   * Saves a screenshot, the page's console, the code-server log and the workbench's logs under test-
   * results/e2e/<name>/.
   */
  async saveEvidence(name: string): Promise<string> {
    const dir = path.join(RESULTS, name.replace(/[^\w.-]+/g, '-'));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    await this.page.screenshot({ path: path.join(dir, 'screenshot.png') }).catch(() => {});
    fs.copyFileSync(this.serverLog, path.join(dir, 'code-server.log'));
    fs.writeFileSync(path.join(dir, 'console.log'), this.console.join('\n'));
    const logs = path.join(this.home, 'user-data', 'logs');
    if (fs.existsSync(logs)) fs.cpSync(logs, path.join(dir, 'logs'), { recursive: true });
    return dir;
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
    await killGroup(this.server);
    fs.rmSync(this.home, { recursive: true, force: true });
  }
}

/**
 * Runs a scenario in a fresh workbench on a fresh workspace folder (`prepare` fills it first). On
 * failure it saves a screenshot and the logs, and says where in a test diagnostic.
 */
export async function inWorkbench(
  t: TestContext,
  prepare: (workspace: string) => void,
  scenario: (wb: Workbench) => Promise<void>,
  options?: WorkbenchOptions,
): Promise<void> {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-e2e-workspace-'));
  try {
    prepare(workspace);
    const wb = await Workbench.open(workspace, options);
    try {
      await scenario(wb);
    } catch (e) {
      t.diagnostic(`screenshot and logs: ${await wb.saveEvidence(t.name)}`);
      throw e;
    } finally {
      await wb.close();
    }
  } finally {
    fs.rmSync(workspace, { recursive: true, force: true });
  }
}

/** code-server's environment: its config and data folders inside `home`, not the user's. */
function serverEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('VSCODE_') || key === 'ELECTRON_RUN_AS_NODE') delete env[key];
  return {
    ...env,
    XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_DATA_HOME: path.join(home, 'data'),
    XDG_CACHE_HOME: path.join(home, 'cache'),
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitForHealth(origin: string, server: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null)
      throw new Error(`code-server exited with code ${server.exitCode} before it was ready`);
    try {
      if ((await fetch(`${origin}/healthz`)).status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`code-server did not answer ${origin}/healthz within 60 s (log: ${log})`);
}

/** Ends code-server's process group: SIGTERM, then SIGKILL for whatever is left after 5 s. */
async function killGroup(server: ChildProcess): Promise<void> {
  if (server.pid === undefined) return;
  const signal = (name: NodeJS.Signals | 0) => {
    try {
      process.kill(-server.pid!, name);
      return true;
    } catch {
      return false; // The group is gone.
    }
  };
  if (!signal('SIGTERM')) return;
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if (!signal(0)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  signal('SIGKILL');
}
