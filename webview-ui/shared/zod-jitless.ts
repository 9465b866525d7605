/**
 * zod compiles object parsers with `new Function` when it may, and probing for that is a CSP
 * violation in a webview (no unsafe-eval). Imported before any schema is built, this turns it off.
 */
import { z } from 'zod';

z.config({ jitless: true });
