/**
 * A language pack for the workbench's display language, made for the tests: VS Code applies an
 * extension's own translations (package.nls.<language>.json, l10n bundles) only when a language
 * pack for the language is installed. This one contributes the language and no translations of
 * VS Code itself, so the workbench's own texts stay English and only this extension's change.
 */
import * as fs from 'fs';
import * as path from 'path';
import { createVSIX } from '@vscode/vsce';

/**
 * Where VS Code looks up installed language packs when it starts (it writes this file itself only
 * later, once it has scanned the extensions): the pack installed in `extensionsDir` for `language`.
 */
export function registerLanguagePack(userDataDir: string, extensionsDir: string, language: string): void {
  const installed = fs.readdirSync(extensionsDir).find((d) => d.startsWith(`tests.language-pack-${language}-`));
  if (!installed) throw new Error(`the ${language} language pack is not in ${extensionsDir}`);
  const packs = {
    [language]: {
      hash: `tests-${language}`,
      extensions: [{ extensionIdentifier: { id: `tests.language-pack-${language}` }, version: '1.0.0' }],
      translations: { vscode: path.join(extensionsDir, installed, 'translations', 'main.i18n.json') },
      label: language,
    },
  };
  fs.writeFileSync(path.join(userDataDir, 'languagepacks.json'), JSON.stringify(packs));
}

/** Packages the pack for `language` ("zh-cn") in `dir`, returning the VSIX's path. */
export async function languagePackVsix(language: string, dir: string): Promise<string> {
  const source = path.join(dir, `language-pack-${language}`);
  fs.mkdirSync(path.join(source, 'translations'), { recursive: true });
  fs.writeFileSync(
    path.join(source, 'translations', 'main.i18n.json'),
    JSON.stringify({ version: '1.0.0', contents: {} }),
  );
  fs.writeFileSync(path.join(source, '.vscodeignore'), '');
  fs.writeFileSync(
    path.join(source, 'package.json'),
    JSON.stringify({
      name: `language-pack-${language}`,
      displayName: `${language} display language for tests`,
      publisher: 'tests',
      version: '1.0.0',
      engines: { vscode: '^1.80.0' },
      categories: ['Language Packs'],
      contributes: {
        localizations: [
          {
            languageId: language,
            languageName: language,
            translations: [{ id: 'vscode', path: './translations/main.i18n.json' }],
          },
        ],
      },
    }),
  );
  const vsix = path.join(dir, `language-pack-${language}.vsix`);
  await createVSIX({
    cwd: source,
    packagePath: vsix,
    allowMissingRepository: true,
    skipLicense: true,
    dependencies: false,
  });
  return vsix;
}
