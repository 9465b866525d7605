/**
 * The Hugging Face cache layout, as huggingface_hub writes it, so either tool reuses the other's
 * downloads:
 *
 *   <cache>/models--org--name/blobs/<etag>                 file contents, named by sha256 (LFS) or git oid
 *   (datasets: <cache>/datasets--org--name/…, the same within)
 *   <cache>/models--org--name/snapshots/<commit>/<file>    relative symlinks to the blobs
 *   <cache>/models--org--name/refs/<revision>              the commit a branch or tag pointed to
 *
 * A blob is written as "<etag>.incomplete" and renamed once whole, so a cut download resumes.
 */
import * as fs from 'fs';
import * as path from 'path';
import { getRepoFolderName } from '@huggingface/hub';

const COMMIT = /^[0-9a-f]{40}$/;

export type RepoType = 'model' | 'dataset';

export class RepoCache {
  readonly folder: string;

  constructor(
    cacheDir: string,
    readonly repo: string,
    readonly type: RepoType = 'model',
  ) {
    this.folder = path.join(cacheDir, getRepoFolderName({ type, name: repo }));
  }

  snapshot(commit: string): string {
    return path.join(this.folder, 'snapshots', commit);
  }

  blob(etag: string): string {
    return path.join(this.folder, 'blobs', etag);
  }

  /** The commit a revision names: itself when it is a commit hash, else what its ref recorded. */
  commitOf(revision: string): string | undefined {
    if (COMMIT.test(revision)) return revision;
    try {
      const commit = fs.readFileSync(path.join(this.folder, 'refs', revision), 'utf8').trim();
      return COMMIT.test(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  /** Records the commit a branch or tag points to now. */
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const ref = path.join(this.folder, 'refs', revision);
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    fs.writeFileSync(ref, commit);
  }

  /** Puts a blob into a snapshot as a relative symlink, or as a copy where links cannot be made. */
  link(commit: string, file: string, etag: string): void {
    const target = path.join(this.snapshot(commit), file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.rmSync(target, { force: true });
    try {
      fs.symlinkSync(path.relative(path.dirname(target), this.blob(etag)), target);
    } catch {
      fs.copyFileSync(this.blob(etag), target);
    }
  }
}
