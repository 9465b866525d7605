/**
 * Where the Hub is and where its downloads go, from the environment variables huggingface_hub
 * reads, so that Python tools and this one share one cache and one login.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export interface HubSettings {
  /** HF_ENDPOINT, else https://huggingface.co; no trailing slash. */
  endpoint: string;
  /** The hub cache: HF_HUB_CACHE, else $HF_HOME/hub (HF_HOME defaults to ~/.cache/huggingface). */
  cacheDir: string;
  /** HF_TOKEN, else the token file `hf auth login` writes ($HF_HOME/token, or HF_TOKEN_PATH). */
  token?: string;
  /** HF_HUB_OFFLINE=1: the cache only, never the network. */
  offline: boolean;
}

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export function hubSettings(env: NodeJS.ProcessEnv = process.env): HubSettings {
  const home = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
  return {
    endpoint: (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    cacheDir: env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || path.join(home, 'hub'),
    token: env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || readToken(env.HF_TOKEN_PATH || path.join(home, 'token')),
    offline: /^(1|on|yes|true)$/i.test(env.HF_HUB_OFFLINE ?? ''),
  };
}

function readToken(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
