import * as fs from 'fs';
import * as path from 'path';

/** The folder holding our package.json, found from wherever this code runs (sources or a bundle). */
export function packageRoot(from = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'media'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the package folder above ${from}`);
  }
}
