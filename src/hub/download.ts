/**
 * One file of a repo into its blob in the cache: written to "<blob>.incomplete", resumed with an
 * HTTP Range request after a cut (in this run or an earlier one), checked against the size and
 * sha256 the Hub lists, then renamed into place.
 */
import { createHash } from 'crypto';
import { once } from 'events';
import * as fs from 'fs';
import * as path from 'path';
import { Readable, Transform } from 'stream';
import { ReadableStream } from 'stream/web';
import { pipeline } from 'stream/promises';
import { ConnectionCutError, HubError, apiError, isNetworkError } from './errors';
import { ProgressTracker } from './progress';

export interface BlobJob {
  /** The file's path in the repo, for messages. */
  file: string;
  url: string;
  /** The blob to write. */
  dest: string;
  /** Bytes, as the repo listing gives them. */
  size: number;
  /** For files stored with LFS. */
  sha256?: string;
}

/** Tries per file; a try that brought no bytes waits RETRY_MS times its number before the next. */
const ATTEMPTS = 5;
const RETRY_MS = 500;

/** Bytes of `job` already on disk from an earlier try. */
export function heldBytes(job: BlobJob): number {
  return Math.min(sizeOf(partialOf(job)), job.size);
}

export async function fetchBlob(
  job: BlobJob,
  fetcher: typeof fetch,
  progress: ProgressTracker,
  signal?: AbortSignal,
): Promise<void> {
  const partial = partialOf(job);
  fs.mkdirSync(path.dirname(partial), { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const before = sizeOf(partial);
    try {
      await fetchRest(job, partial, fetcher, progress);
      break;
    } catch (e) {
      if (e instanceof RefusedDownloadError) fs.rmSync(partial, { force: true });
      if (signal?.aborted || !isNetworkError(e) || attempt === ATTEMPTS) throw e;
      if (sizeOf(partial) === before) await new Promise((resolve) => setTimeout(resolve, RETRY_MS * attempt));
    }
  }
  await checkSha256(job, partial).catch((e) => {
    fs.rmSync(partial, { force: true });
    throw e;
  });
  fs.renameSync(partial, job.dest);
}

/** Fetches what `partial` lacks, appending to it; a cut connection throws a network error. */
async function fetchRest(job: BlobJob, partial: string, fetcher: typeof fetch, progress: ProgressTracker) {
  if (sizeOf(partial) > job.size) fs.rmSync(partial);
  const offset = sizeOf(partial);
  if (offset === job.size) return;
  const headers: Record<string, string> = {
    'Accept-Encoding': 'identity',
    ...(offset > 0 && { Range: `bytes=${offset}-` }),
  };
  const res = await fetcher(job.url, { headers });
  if (!res.ok) throw await apiError(res);
  const start = res.status === 206 ? offset : 0;
  try {
    checkAnnouncedSize(job, res, start);
  } catch (e) {
    await res.body?.cancel();
    throw e;
  }
  progress.rewind(offset - start);
  const body = Readable.fromWeb(res.body as ReadableStream<Uint8Array>);
  const out = fs.createWriteStream(partial, { flags: start > 0 ? 'a' : 'w' });
  try {
    await pipeline(body, sizeGuard(job, start, progress), out);
  } finally {
    // A cut connection rejects the pipeline while writes may still be under way: the next try
    // reads the file's size for its Range, so it must wait until every byte that came is written.
    if (!out.closed) await once(out, 'close');
  }
  const got = sizeOf(partial);
  if (got < job.size) throw new ConnectionCutError(`${job.file}: the connection ended at byte ${got} of ${job.size}`);
}

/** Refuses a response whose size disagrees with the listing, before writing any of it. */
function checkAnnouncedSize(job: BlobJob, res: Response, start: number): void {
  const range = res.headers.get('content-range');
  const length = Number(res.headers.get('content-length') ?? NaN);
  const announced =
    res.status === 206 ? Number(range?.split('/')[1]) : res.headers.get('content-encoding') ? NaN : length;
  const from = res.status === 206 ? Number(/^bytes (\d+)-/.exec(range ?? '')?.[1]) : 0;
  if (from !== start)
    throw new HubError(`${job.file}: the Hub answered a resume from byte ${start} with bytes from ${from}`);
  if (!Number.isNaN(announced) && announced !== job.size) throw sizeMismatch(job, `sends ${announced} bytes`);
}

/** Passes bytes on, counting them, and fails on any byte past the listed size. */
function sizeGuard(job: BlobJob, start: number, progress: ProgressTracker): Transform {
  let written = start;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      written += chunk.length;
      if (written > job.size) return done(sizeMismatch(job, 'sends more bytes'));
      progress.add(chunk.length);
      done(null, chunk);
    },
  });
}

/** Bytes that disagree with the listing: what arrived is thrown away. */
class RefusedDownloadError extends HubError {}

function sizeMismatch(job: BlobJob, what: string): HubError {
  return new RefusedDownloadError(
    `${job.file}: the Hub ${what} where its listing gives ${job.size}; the download was refused`,
  );
}

async function checkSha256(job: BlobJob, partial: string): Promise<void> {
  if (!job.sha256) return;
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(partial)) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  if (actual !== job.sha256)
    throw new HubError(
      `${job.file}: the download's sha256 is ${actual}, the Hub lists ${job.sha256}; it was refused (the next try downloads it afresh)`,
    );
}

function partialOf(job: BlobJob): string {
  return `${job.dest}.incomplete`;
}

function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}
