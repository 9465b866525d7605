/**
 * A local stand-in for the Hugging Face Hub: the routes the Hub client and the downloads call
 * (model or dataset info, file tree, resolve with Range), for repos held in memory. It records every request,
 * and can misbehave on purpose: cut a file's response short, list a wrong size, refuse access.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as path from 'path';
import { saveCheckpoint } from '../../src/model/checkpoint';
import { presetConfig, resizeConfig } from '../../src/model/config';
import { initParams } from '../../src/model/decoder';
import { Rng } from '../../src/util/rng';

/** A tiny GPT-2 saved as a checkpoint in `dir`, with tokenizer files and files a model does not need. */
export function tinyModelFiles(dir: string): Record<string, Buffer> {
  const config = resizeConfig(presetConfig('tiny'), { nPositions: 32, nEmbd: 8, nLayer: 1, nHead: 2 });
  saveCheckpoint(dir, { config, params: initParams(config, new Rng(1)) });
  const read = (f: string) => fs.readFileSync(path.join(dir, f));
  return {
    'config.json': read('config.json'),
    'model.safetensors': read('model.safetensors'),
    'tokenizer_config.json': Buffer.from(JSON.stringify({ eos_token: '<|endoftext|>', model_max_length: 32 })),
    'special_tokens_map.json': Buffer.from(JSON.stringify({ eos_token: '<|endoftext|>' })),
    'README.md': Buffer.from('# tiny\n'),
    'pytorch_model.bin': Buffer.from('not needed'),
  };
}

export interface FakeRepo {
  /** Served under /datasets/ and /api/datasets/ (default: a model repo). */
  type?: 'dataset';
  /** The files of every revision but those in `branches`. */
  files: Record<string, Buffer>;
  /** Revision name → commit; "main" is always there. */
  refs?: Record<string, string>;
  /** Branches with files of their own (e.g. "refs/convert/parquet"), at commitOf(repo, branch). */
  branches?: Record<string, Record<string, Buffer>>;
  /** Needs "Authorization: Bearer <token>". */
  token?: string;
  /** Files resolve with 403, as for a gated repo whose conditions were not accepted. */
  gated?: boolean;
}

export interface Request {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

/** Files stored with LFS on the Hub (listed with a sha256). */
const isLfs = (file: string) => /\.(safetensors|bin|parquet)$/.test(file);

const gitOid = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
export const commitOf = (repo: string, revision = 'main') =>
  createHash('sha1').update(`${repo}@${revision}`).digest('hex');

export class FakeHub {
  readonly requests: Request[] = [];
  /** file → bytes: its next response stops after that many bytes (then the connection drops). */
  readonly cuts = new Map<string, number>();
  /** file → a size the tree listing gives instead of the true one. */
  readonly listedSizes = new Map<string, number>();
  /** file → bytes: its next response sends that many bytes, then nothing more, and calls `sent`. */
  private readonly stalls = new Map<string, { bytes: number; sent: () => void }>();
  /** file → bytes sent in place of the listed ones. */
  readonly corrupted = new Map<string, Buffer>();
  private readonly server: http.Server;

  private constructor(private readonly repos: Record<string, FakeRepo>) {
    this.server = http.createServer((req, res) => this.answer(req, res));
  }

  static async start(repos: Record<string, FakeRepo>): Promise<FakeHub> {
    const hub = new FakeHub(repos);
    await new Promise<void>((resolve) => hub.server.listen(0, '127.0.0.1', resolve));
    return hub;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The next response for `file` hangs after `bytes` bytes; settles once they are sent. */
  stallAfter(file: string, bytes: number): Promise<void> {
    return new Promise((sent) => this.stalls.set(file, { bytes, sent }));
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const { range, authorization } = req.headers;
    this.requests.push({ method: req.method!, url: req.url!, range, authorization });
    const url = new URL(req.url!, 'http://hub');
    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const [type, name, revision] = api
      ? [api[1] === 'datasets' ? 'dataset' : undefined, api[2], decodeURIComponent(api[4])]
      : resolve
        ? [resolve[1] ? 'dataset' : undefined, resolve[2], resolve[3]]
        : [];
    const repo = name ? this.repos[name] : undefined;
    if (!name || !repo || repo.type !== type) return json(res, 404, { error: 'Repository not found' });
    if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`)
      return json(res, 401, { error: 'Invalid username or password.' });
    const commit = this.commitFor(name, revision!);
    if (!commit) return json(res, 404, { error: `Invalid rev id: ${revision}` });
    if (api?.[3] === 'revision')
      return json(res, 200, {
        _id: name,
        id: name,
        sha: commit,
        private: !!repo.token,
        lastModified: '2026-01-01T00:00:00.000Z',
      });
    const files = this.filesAt(name, commit);
    if (api) return json(res, 200, this.tree(files));
    if (repo.gated)
      return json(res, 403, { error: 'Access to this model is restricted. You must accept its conditions.' });
    const file = decodeURIComponent(resolve![4]);
    this.sendFile(req, res, file, this.corrupted.get(file) ?? files[file]);
  }

  private commitFor(name: string, revision: string): string | undefined {
    const branches = Object.keys(this.repos[name].branches ?? {}).map((b) => [b, commitOf(name, b)]);
    const commits: Record<string, string> = {
      main: commitOf(name),
      ...this.repos[name].refs,
      ...Object.fromEntries(branches),
    };
    if (Object.values(commits).includes(revision)) return revision;
    return commits[revision];
  }

  private filesAt(name: string, commit: string): Record<string, Buffer> {
    const { files, branches = {} } = this.repos[name];
    return Object.entries(branches).find(([branch]) => commitOf(name, branch) === commit)?.[1] ?? files;
  }

  private tree(files: Record<string, Buffer>) {
    return Object.entries(files).map(([path, data]) => {
      const size = this.listedSizes.get(path) ?? data.length;
      const lfs = isLfs(path) ? { oid: sha256(data), size, pointerSize: 134 } : undefined;
      return {
        type: 'file',
        path,
        size,
        oid: gitOid(lfs ? Buffer.from(`pointer ${sha256(data)}`) : data),
        ...(lfs && { lfs }),
      };
    });
  }

  private sendFile(req: http.IncomingMessage, res: http.ServerResponse, file: string, data: Buffer | undefined): void {
    if (!data) return json(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    const part = data.subarray(start);
    const headers = {
      'Content-Length': String(part.length),
      ETag: `"${isLfs(file) ? sha256(data) : gitOid(data)}"`,
      'Accept-Ranges': 'bytes',
    };
    if (start > 0)
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${data.length - 1}/${data.length}` });
    else res.writeHead(200, headers);
    const cut = this.cuts.get(file);
    const stall = this.stalls.get(file);
    this.cuts.delete(file);
    this.stalls.delete(file);
    if (cut !== undefined) res.write(part.subarray(0, cut), () => res.destroy());
    else if (stall) res.write(part.subarray(0, stall.bytes), () => stall.sent());
    else res.end(part);
  }
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}
