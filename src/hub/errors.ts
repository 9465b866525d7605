/** What went wrong with a Hub download, said so that the user knows what to do about it. */
import { HubApiError } from '@huggingface/hub';
import { HubSpec, formatHubSpec } from './spec';
import { HubSettings } from './settings';

/** A failure already explained in its message. */
export class HubError extends Error {}

/** Stop (or Ctrl-C) ended the download; what arrived stays in the cache for the next try. */
export class DownloadStoppedError extends HubError {}

/** A response that ended before all of its bytes arrived. */
export class ConnectionCutError extends Error {}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);
const DISK_CODES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EIO', 'EMFILE']);

/** A connection that failed or broke off: worth another try. */
export function isNetworkError(e: unknown): boolean {
  if (e instanceof ConnectionCutError) return true;
  const cause = (e as { cause?: { code?: string } } | undefined)?.cause;
  if (cause?.code && (NETWORK_CODES.has(cause.code) || cause.code.startsWith('UND_ERR'))) return true;
  return e instanceof TypeError && (e.message === 'fetch failed' || e.message === 'terminated');
}

export function isAbort(e: unknown): boolean {
  return (e as Error | undefined)?.name === 'AbortError';
}

/** A refused request as the Hub client reports them, with the Hub's JSON answer in `data`. */
export async function apiError(res: Response): Promise<HubApiError> {
  const error = new HubApiError(
    res.url,
    res.status,
    res.headers.get('X-Request-Id') ?? undefined,
    `Api error with status ${res.status}`,
  );
  const text = await res.text();
  try {
    error.data = JSON.parse(text);
  } catch {
    error.data = { message: text };
  }
  return error;
}

/** The error to show for a failed download of `hub`. */
export function explain(e: unknown, hub: HubSpec, settings: HubSettings): Error {
  const name = formatHubSpec(hub);
  if (e instanceof HubError) return e;
  if (isAbort(e))
    return new DownloadStoppedError(
      `stopped while downloading ${name}; the next run that needs it resumes the download`,
    );
  if (e instanceof HubApiError) return new HubError(refusal(e, hub, settings));
  const code = (e as NodeJS.ErrnoException).code;
  if (code && DISK_CODES.has(code)) {
    const hint = code === 'ENOSPC' || code === 'EDQUOT' ? 'free some space, or' : 'check its permissions, or';
    return new HubError(
      `cannot write ${name} into the Hugging Face cache ${settings.cacheDir} (${(e as Error).message}): ${hint} set HF_HUB_CACHE (or HF_HOME) to another folder`,
    );
  }
  if (e instanceof ConnectionCutError)
    return new HubError(`the download of ${name} kept breaking off (${e.message}); running again resumes it`);
  if (isNetworkError(e)) {
    const reason = (e as { cause?: { code?: string; message?: string } }).cause;
    return new HubError(
      `cannot reach the Hugging Face Hub at ${settings.endpoint} to download ${name} (${reason?.code ?? reason?.message ?? (e as Error).message}): check the network connection, or HF_ENDPOINT`,
    );
  }
  return new HubError(`cannot download ${name} from ${settings.endpoint}: ${(e as Error).message}`);
}

function refusal(e: HubApiError, hub: HubSpec, settings: HubSettings): string {
  const name = formatHubSpec(hub);
  const said = hubMessage(e);
  const status = `${e.statusCode}${said ? `: ${said}` : ''}`;
  switch (e.statusCode) {
    case 401:
      return (
        `${name}: the Hub refused access (${status}); the repo does not exist, or is private or gated. ` +
        (settings.token
          ? 'The token in use (HF_TOKEN, or the saved login) cannot read it.'
          : 'If you have access, set HF_TOKEN to an access token, or log in with "hf auth login".')
      );
    case 403:
      return `${name} is gated (${status}): accept its conditions at ${settings.endpoint}/${hub.repo} while logged in, then use a token of that account (HF_TOKEN).`;
    case 404:
      return `${name} was not found on ${settings.endpoint} (${status}): check the repo id${hub.revision === 'main' ? '' : ' and the revision'}.`;
    default:
      return `${name}: the Hub at ${settings.endpoint} answered ${status}.`;
  }
}

/** The Hub's own words, without the URL trailer the client appends. */
function hubMessage(e: HubApiError): string {
  const data = e.data as { error?: unknown } | undefined;
  return typeof data?.error === 'string'
    ? data.error
    : e.message.replace(/\. URL: .*$/s, '').replace(/^Api error with status \d+$/, '');
}
