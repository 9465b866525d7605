/** Models from the Hugging Face Hub, against a local fake Hub: the cache layout, offline use, errors, resume. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/train/model-state';
import { DownloadStoppedError } from '../../src/hub/errors';
import { DownloadProgress } from '../../src/hub/progress';
import { ResolveOptions, modelFromHub } from '../../src/hub/resolve';
import { HubSettings, hubSettings } from '../../src/hub/settings';
import { hubSpecOf, parseHubSpec } from '../../src/hub/spec';
import { FakeHub, FakeRepo, commitOf, sha256, tinyModelFiles } from '../helpers/fake-hub';
import { tempDir } from '../helpers/temp';

const scratch = tempDir('hub');

const files = tinyModelFiles(path.join(scratch, 'source'));
const MODEL_FILES = ['config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer_config.json'];
const sharded: Record<string, Buffer> = {
  'config.json': files['config.json'],
  'model.safetensors.index.json': Buffer.from(
    JSON.stringify({
      metadata: {},
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    }),
  ),
  'model-00001-of-00002.safetensors': Buffer.from('first shard'),
  'model-00002-of-00002.safetensors': Buffer.from('second shard'),
  'model.fp16.safetensors': Buffer.from('another variant'),
};
const repos: Record<string, FakeRepo> = {
  'test-org/tiny': { files, refs: { v1: commitOf('test-org/tiny', 'v1') } },
  'test-org/sharded': { files: sharded },
  'test-org/private': { files, token: 'hf_secret' },
  'test-org/gated': { files, gated: true },
  'test-org/no-weights': { files: { 'config.json': files['config.json'], 'pytorch_model.bin': Buffer.from('x') } },
};

let caches = 0;
/** Settings for the fake Hub with a fresh, empty cache. */
function fresh(hub: FakeHub, more: Partial<HubSettings> = {}): HubSettings {
  return { endpoint: hub.url, cacheDir: path.join(scratch, `cache-${caches++}`), offline: false, ...more };
}

async function withHub(run: (hub: FakeHub) => Promise<void>): Promise<void> {
  const hub = await FakeHub.start(repos);
  try {
    await run(hub);
  } finally {
    await hub.close();
  }
}

const download = (spec: string, settings: HubSettings, options: ResolveOptions = {}) =>
  modelFromHub(parseHubSpec(spec)!, { settings, ...options });
const resolves = (hub: FakeHub) => hub.requests.filter((r) => r.url.includes('/resolve/'));

test('hub: a first download fills the Hugging Face cache layout with the files a model needs', () =>
  withHub(async (hub) => {
    const settings = fresh(hub);
    const seen: DownloadProgress[] = [];
    const dir = await download('test-org/tiny', settings, { onProgress: (p) => seen.push(p) });

    const repoDir = path.join(settings.cacheDir, 'models--test-org--tiny');
    const commit = commitOf('test-org/tiny');
    assert.equal(dir, path.join(repoDir, 'snapshots', commit));
    assert.equal(fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8'), commit);
    assert.deepEqual(fs.readdirSync(dir).sort(), MODEL_FILES, 'README.md and pytorch_model.bin are not fetched');
    const weights = path.join(dir, 'model.safetensors');
    assert.equal(
      fs.readlinkSync(weights),
      path.join('..', '..', 'blobs', sha256(files['model.safetensors'])),
      'LFS blobs are named by sha256',
    );
    assert.deepEqual(fs.readFileSync(weights), files['model.safetensors']);
    assert.ok(fs.lstatSync(path.join(dir, 'config.json')).isSymbolicLink());
    assert.deepEqual(
      fs.readdirSync(path.join(repoDir, 'blobs')).filter((b) => b.endsWith('.incomplete')),
      [],
    );
    assert.equal(loadModel(dir, 0).config.nLayer, 1, 'the snapshot loads as a model folder');

    const total = MODEL_FILES.reduce((sum, f) => sum + files[f].length, 0);
    assert.deepEqual(seen.at(-1), { ...seen.at(-1)!, repo: 'test-org/tiny', received: total, total });
    assert.ok(seen.every((p) => p.bytesPerSecond >= 0 && p.received <= total));
  }));

test('hub: a cached model is used with no request at all, also offline; offline without it says what to do', () =>
  withHub(async (hub) => {
    const settings = fresh(hub);
    const dir = await download('test-org/tiny', settings);
    const before = hub.requests.length;
    assert.equal(await download('test-org/tiny', settings), dir);
    assert.equal(await download('test-org/tiny', { ...settings, offline: true }), dir);
    assert.equal(hub.requests.length, before, 'no request for a cached model');

    await assert.rejects(download('test-org/sharded', { ...settings, offline: true }), (e: Error) =>
      /HF_HUB_OFFLINE is set and test-org\/sharded cannot be loaded: it is not in the Hugging Face cache/.test(
        e.message,
      ),
    );
    fs.rmSync(path.join(dir, 'model.safetensors'));
    await assert.rejects(
      download('test-org/tiny', { ...settings, offline: true }),
      /its cached snapshot lacks model.safetensors/,
    );
    assert.equal(hub.requests.length, before, 'offline makes no request');
    assert.equal(await download('test-org/tiny', settings), dir, 'online, the missing file is fetched again');
    assert.ok(fs.existsSync(path.join(dir, 'model.safetensors')));
  }));

test('hub: a revision (branch, tag or commit) gets its own snapshot and ref', () =>
  withHub(async (hub) => {
    const settings = fresh(hub);
    const v1 = commitOf('test-org/tiny', 'v1');
    const dir = await download('test-org/tiny@v1', settings);
    assert.equal(path.basename(dir), v1);
    assert.equal(fs.readFileSync(path.join(settings.cacheDir, 'models--test-org--tiny', 'refs', 'v1'), 'utf8'), v1);
    const before = hub.requests.length;
    assert.equal(
      await download(`test-org/tiny@${v1}`, settings),
      dir,
      'a commit hash finds its snapshot without a ref',
    );
    assert.equal(hub.requests.length, before);
    await assert.rejects(
      download('test-org/tiny@nope', settings),
      (e: Error) =>
        e.message.startsWith('test-org/tiny@nope was not found on') &&
        e.message.includes('check the repo id and the revision'),
    );
  }));

test('hub: a sharded model fetches its index and the shards it names, not other weights', () =>
  withHub(async (hub) => {
    const dir = await download('test-org/sharded', fresh(hub));
    assert.deepEqual(fs.readdirSync(dir).sort(), [
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
  }));

test('hub: a missing, private or gated repo, or one without safetensors, gets an error that says what to do', () =>
  withHub(async (hub) => {
    await assert.rejects(
      download('test-org/missing', fresh(hub)),
      (e: Error) =>
        e.message === `test-org/missing was not found on ${hub.url} (404: Repository not found): check the repo id.`,
    );
    await assert.rejects(
      download('test-org/private', fresh(hub)),
      (e: Error) => e.message.includes('the Hub refused access (401') && e.message.includes('set HF_TOKEN'),
    );
    await assert.rejects(
      download('test-org/private', fresh(hub, { token: 'hf_wrong' })),
      /The token in use \(HF_TOKEN, or the saved login\) cannot read it/,
    );
    await assert.rejects(
      download('test-org/gated', fresh(hub)),
      (e: Error) =>
        e.message.startsWith('test-org/gated is gated (403') &&
        e.message.includes(`accept its conditions at ${hub.url}/test-org/gated`),
    );
    await assert.rejects(
      download('test-org/no-weights', fresh(hub)),
      /has no model.safetensors nor model.safetensors.index.json/,
    );

    const dir = await download('test-org/private', fresh(hub, { token: 'hf_secret' }));
    assert.ok(fs.existsSync(path.join(dir, 'model.safetensors')));
    assert.ok(
      hub.requests.filter((r) => r.url.includes('test-org/private')).at(-1)?.authorization === 'Bearer hf_secret',
    );
  }));

test('hub: a download cut off in the middle resumes with a Range request, in the same run or the next', () =>
  withHub(async (hub) => {
    const weights = files['model.safetensors'];
    hub.cuts.set('model.safetensors', 600_000);
    const dir = await download('test-org/tiny', fresh(hub));
    assert.deepEqual(fs.readFileSync(path.join(dir, 'model.safetensors')), weights);
    const ranges = resolves(hub)
      .filter((r) => r.url.endsWith('/model.safetensors'))
      .map((r) => r.range);
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0], undefined);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? '')?.[1]);
    assert.ok(resumedAt > 0 && resumedAt <= 600_000, `resumed with ${ranges[1]}`);

    // What an earlier process left behind, with no connection now: kept, then resumed when the Hub is back.
    const settings = fresh(hub);
    const blob = path.join(settings.cacheDir, 'models--test-org--tiny', 'blobs', sha256(weights));
    fs.mkdirSync(path.dirname(blob), { recursive: true });
    fs.writeFileSync(`${blob}.incomplete`, weights.subarray(0, 1000));
    const seen: DownloadProgress[] = [];
    await download('test-org/tiny', settings, { onProgress: (p) => seen.push(p) });
    assert.equal(resolves(hub).at(-1)?.range, 'bytes=1000-');
    assert.deepEqual(fs.readFileSync(blob), weights);
    assert.equal(seen.at(-1)?.received, seen.at(-1)?.total, 'progress counts the resumed bytes');
  }));

test('hub: a file whose size or sha256 differs from the listing is refused and not kept', () =>
  withHub(async (hub) => {
    const settings = fresh(hub);
    hub.listedSizes.set('model.safetensors', files['model.safetensors'].length + 1);
    await assert.rejects(
      download('test-org/tiny', settings),
      (e: Error) =>
        e.message ===
        `model.safetensors: the Hub sends ${files['model.safetensors'].length} bytes where its listing gives ${files['model.safetensors'].length + 1}; the download was refused`,
    );
    const blobs = path.join(settings.cacheDir, 'models--test-org--tiny', 'blobs');
    assert.deepEqual(
      fs.readdirSync(blobs).filter((b) => b.startsWith(sha256(files['model.safetensors']))),
      [],
    );
    assert.ok(
      !fs.existsSync(path.join(settings.cacheDir, 'models--test-org--tiny', 'refs')),
      'no ref to a snapshot without its weights',
    );
    hub.listedSizes.clear();

    const weights = files['model.safetensors'];
    hub.corrupted.set('model.safetensors', Buffer.from(weights).fill(7, 0, 10));
    await assert.rejects(
      download('test-org/tiny', settings),
      (e: Error) =>
        e.message.startsWith("model.safetensors: the download's sha256 is") &&
        e.message.endsWith(`the Hub lists ${sha256(weights)}; it was refused (the next try downloads it afresh)`),
    );
    assert.deepEqual(
      fs.readdirSync(blobs).filter((b) => b.startsWith(sha256(weights))),
      [],
    );
    hub.corrupted.clear();
    assert.deepEqual(
      fs.readFileSync(path.join(await download('test-org/tiny', settings), 'model.safetensors')),
      weights,
    );
  }));

test('hub: no network, or a cache that cannot be written, gets an error that names the endpoint or the folder', () =>
  withHub(async (hub) => {
    const closed = await FakeHub.start({});
    const endpoint = closed.url;
    await closed.close();
    await assert.rejects(
      download('test-org/tiny', { ...fresh(hub), endpoint }),
      (e: Error) =>
        e.message ===
        `cannot reach the Hugging Face Hub at ${endpoint} to download test-org/tiny (ECONNREFUSED): check the network connection, or HF_ENDPOINT`,
    );

    const notAFolder = path.join(scratch, 'a-file');
    fs.writeFileSync(notAFolder, '');
    await assert.rejects(
      download('test-org/tiny', { ...fresh(hub), cacheDir: path.join(notAFolder, 'hub') }),
      (e: Error) =>
        e.message.startsWith(
          `cannot write test-org/tiny into the Hugging Face cache ${path.join(notAFolder, 'hub')} (ENOTDIR`,
        ) && e.message.endsWith('check its permissions, or set HF_HUB_CACHE (or HF_HOME) to another folder'),
    );
  }));

test('hub: stopping a download keeps what arrived, and the next try resumes it', () =>
  withHub(async (hub) => {
    const settings = fresh(hub);
    const stop = new AbortController();
    void hub.stallAfter('model.safetensors', 400_000).then(() => setTimeout(() => stop.abort(), 100));
    await assert.rejects(
      download('test-org/tiny', settings, { signal: stop.signal }),
      (e: Error) =>
        e instanceof DownloadStoppedError &&
        e.message === 'stopped while downloading test-org/tiny; the next run that needs it resumes the download',
    );
    const blobs = path.join(settings.cacheDir, 'models--test-org--tiny', 'blobs');
    const partial = fs.readdirSync(blobs).find((b) => b.endsWith('.incomplete'));
    assert.ok(partial, 'the part that arrived is kept');
    const held = fs.statSync(path.join(blobs, partial)).size;
    assert.ok(held > 0 && held <= 400_000, `${held} bytes kept`);
    await download('test-org/tiny', settings);
    assert.equal(resolves(hub).at(-1)?.range, `bytes=${held}-`);
  }));

test('hub: specs shaped like repo ids name the Hub unless a folder of that name exists', () => {
  assert.deepEqual(parseHubSpec('HuggingFaceTB/SmolLM2-135M-Instruct'), {
    repo: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    revision: 'main',
  });
  assert.deepEqual(parseHubSpec('Qwen/Qwen3-0.6B@refs/pr/3'), { repo: 'Qwen/Qwen3-0.6B', revision: 'refs/pr/3' });
  for (const spec of ['tiny', '/abs/path', './models/sft', 'a/b/c', 'org/name@', 'org--x/name', 'org/../x'])
    assert.equal(parseHubSpec(spec), undefined, spec);
  const folder = path.join(scratch, 'org', 'name');
  fs.mkdirSync(folder, { recursive: true });
  assert.equal(hubSpecOf('org/name', folder), undefined, 'an existing folder wins');
  assert.deepEqual(hubSpecOf('org/name', path.join(scratch, 'nothing')), { repo: 'org/name', revision: 'main' });
});

test('hub: settings come from the environment variables huggingface_hub reads', () => {
  const home = path.join(scratch, 'hf-home');
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(path.join(home, 'token'), 'hf_saved\n');
  assert.deepEqual(hubSettings({ HF_HOME: home, HF_ENDPOINT: 'http://mirror.example/', HF_HUB_OFFLINE: '1' }), {
    endpoint: 'http://mirror.example',
    cacheDir: path.join(home, 'hub'),
    token: 'hf_saved',
    offline: true,
  });
  assert.deepEqual(
    hubSettings({ HF_HOME: home, HF_HUB_CACHE: '/elsewhere', HF_TOKEN: 'hf_env', HF_HUB_OFFLINE: '0' }),
    { endpoint: 'https://huggingface.co', cacheDir: '/elsewhere', token: 'hf_env', offline: false },
  );
  assert.equal(hubSettings({ XDG_CACHE_HOME: '/xdg' }).cacheDir, path.join('/xdg', 'huggingface', 'hub'));
});
