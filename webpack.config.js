// @ts-check
/**
 * One bundle per process, each built on its own: the extension host (never loads onnxruntime),
 * the training process and the CLI. onnxruntime-node stays external and ships from node_modules
 * with its native binaries. Webview bundles join this list as separate web-targeted configs.
 */
'use strict';
const path = require('path');
const webpack = require('webpack');
const ConstDependency = require('webpack/lib/dependencies/ConstDependency');

const EXTERNALS = ['vscode', 'onnxruntime-node'];

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
        parser.hooks.call.for('require.resolve').tap({ name: 'ExternalRequireResolve', stage: -10 }, (/** @type {any} */ expr) => {
          const [arg] = expr.arguments;
          if (expr.arguments.length !== 1 || arg.type !== 'Literal' || !EXTERNALS.includes(arg.value)) return undefined;
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
    module: { rules: [{ test: /\.ts$/, exclude: /node_modules/, loader: 'esbuild-loader', options: { target: 'node20', format: options.format } }] },
    externals: Object.fromEntries(EXTERNALS.map((name) => [name, `commonjs ${name}`])),
    // Keep Node's own __dirname: code finds the package's media/ folder from the bundle's location.
    node: { __dirname: false, __filename: false },
    devtool: 'source-map',
    infrastructureLogging: { level: 'warn' },
    performance: { hints: false },
    plugins: [new ExternalRequireResolvePlugin(), ...(options.plugins ?? [])],
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
];
