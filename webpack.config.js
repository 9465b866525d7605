// @ts-check
/**
 * One bundle per process, each built on its own: the extension host (never loads onnxruntime),
 * the training process and the CLI. onnxruntime-node and esbuild stay external and ship from
 * node_modules with their native binaries. Each webview (webview-ui/<name>/) is a separate browser bundle,
 * dist/webview/<name>.js, with its stylesheet and the fonts and styles of its libraries beside it.
 */
'use strict';
const path = require('path');
const webpack = require('webpack');
const ConstDependency = require('webpack/lib/dependencies/ConstDependency');
const CopyPlugin = require('copy-webpack-plugin');

// esbuild bundles the workspace's reward functions at run time, with its native binary from node_modules.
const EXTERNALS = ['vscode', 'onnxruntime-node', 'esbuild'];

/**
 * webpack turns `require.resolve('x')` into a module id. For an external that must stay Node's
 * resolve: the engine finds onnxruntime-node's folder of native binaries that way.
 */
class ExternalRequireResolvePlugin {
  /** @param {import('webpack').Compiler} compiler */
  apply(compiler) {
    compiler.hooks.normalModuleFactory.tap('ExternalRequireResolve', (factory) => {
      /** @param {any} parser */
      const handler = (parser) =>
        parser.hooks.call
          .for('require.resolve')
          .tap({ name: 'ExternalRequireResolve', stage: -10 }, (/** @type {any} */ expr) => {
            const [arg] = expr.arguments;
            if (expr.arguments.length !== 1 || arg.type !== 'Literal' || !EXTERNALS.includes(arg.value))
              return undefined;
            const dep = new ConstDependency(`require.resolve(${JSON.stringify(arg.value)})`, expr.range);
            parser.state.module.addPresentationalDependency(dep);
            return true;
          });
      factory.hooks.parser.for('javascript/auto').tap('ExternalRequireResolve', handler);
      factory.hooks.parser.for('javascript/dynamic').tap('ExternalRequireResolve', handler);
    });
  }
}

/**
 * @param {string} name
 * @param {string} entry
 * @param {{ format?: 'cjs', plugins?: import('webpack').WebpackPluginInstance[] }} [options]
 * @returns {import('webpack').Configuration}
 */
function nodeBundle(name, entry, options = {}) {
  return {
    name,
    target: 'node20',
    entry: { [name]: entry },
    output: { path: path.resolve(__dirname, 'dist'), filename: '[name].js', library: { type: 'commonjs2' } },
    resolve: { extensions: ['.ts', '.js'] },
    module: {
      rules: [
        {
          test: /\.ts$/,
          exclude: /node_modules/,
          loader: 'esbuild-loader',
          options: { target: 'node20', format: options.format },
        },
      ],
    },
    externals: Object.fromEntries(EXTERNALS.map((name) => [name, `commonjs ${name}`])),
    // Keep Node's own __dirname: code finds the package's media/ folder from the bundle's location.
    node: { __dirname: false, __filename: false },
    devtool: 'source-map',
    infrastructureLogging: { level: 'warn' },
    performance: { hints: false },
    // One file per process: the lazy imports of libraries (the Hub client's upload helpers) stay inside it.
    plugins: [
      new ExternalRequireResolvePlugin(),
      new webpack.optimize.LimitChunkCountPlugin({ maxChunks: 1 }),
      ...(options.plugins ?? []),
    ],
  };
}

const WEBVIEWS = ['labeling', 'charts'];

/** @returns {import('webpack').Configuration} */
function webviewBundles() {
  const assets = [
    'node_modules/@vscode/codicons/dist/codicon.css',
    'node_modules/@vscode/codicons/dist/codicon.ttf',
    'node_modules/uplot/dist/uPlot.min.css',
    ...WEBVIEWS.map((name) => ({ from: `webview-ui/${name}/style.css`, to: `${name}.css` })),
  ];
  return {
    name: 'webviews',
    target: 'web',
    entry: Object.fromEntries(WEBVIEWS.map((name) => [name, `./webview-ui/${name}/main.ts`])),
    output: { path: path.resolve(__dirname, 'dist', 'webview'), filename: '[name].js' },
    resolve: { extensions: ['.ts', '.js'] },
    module: {
      rules: [{ test: /\.ts$/, exclude: /node_modules/, loader: 'esbuild-loader', options: { target: 'es2022' } }],
    },
    devtool: 'source-map',
    infrastructureLogging: { level: 'warn' },
    performance: { hints: false },
    plugins: [new CopyPlugin({ patterns: assets.map((a) => (typeof a === 'string' ? { from: a } : a)) })],
  };
}

module.exports = [
  nodeBundle('extension', './src/extension.ts'),
  nodeBundle('train-process', './src/runner/train-process.ts'),
  // CommonJS modules, because cli.ts runs only as the main module (`require.main === module`), which
  // webpack keeps true for CommonJS modules alone.
  nodeBundle('cli', './src/cli.ts', {
    format: 'cjs',
    plugins: [new webpack.BannerPlugin({ banner: '#!/usr/bin/env node', raw: true, entryOnly: true })],
  }),
  webviewBundles(),
];
