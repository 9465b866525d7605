/**
 * The CLI's messages in the language of the terminal's locale (LC_ALL, LC_MESSAGES, LANG, as
 * POSIX orders them): Chinese locales read the same l10n bundle as the extension; any other
 * locale, or a language without a bundle, keeps English. TRL metric names are never translated.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as l10n from '@vscode/l10n';
import { packageRoot } from '../util/package-root';

/** The bundle language of a POSIX locale ("zh_CN.UTF-8" → "zh-cn"), or undefined for English. */
export function bundleLanguage(env: NodeJS.ProcessEnv): string | undefined {
  const locale = env.LC_ALL || env.LC_MESSAGES || env.LANG || '';
  return /^zh([_-]|$)/i.test(locale) ? 'zh-cn' : undefined;
}

/** Loads the bundle of the terminal's language, before any message is made. */
export function useSystemLanguage(env: NodeJS.ProcessEnv = process.env): void {
  const language = bundleLanguage(env);
  const bundle = language && path.join(packageRoot(), 'l10n', `bundle.l10n.${language}.json`);
  if (bundle && fs.existsSync(bundle)) l10n.config({ fsPath: bundle });
}
