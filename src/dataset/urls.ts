/** A text file of image URLs as a data source: one http(s) URL per line; blank lines and `#` comments are ignored. */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';

/** The URLs of the list, in file order, each once; a line that is not an http(s) URL is an InputError naming the line. */
export async function readUrlList(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(file, `cannot read the URL list (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const urls: string[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    let url: URL;
    try {
      url = new URL(line);
    } catch {
      throw new InputError(file, `line ${i + 1}: not a URL: ${JSON.stringify(line.slice(0, 200))} (a URL list has one http:// or https:// address per line)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(file, `line ${i + 1}: only http:// and https:// URLs are read, got ${url.protocol}//`);
    if (!seen.has(url.href)) urls.push(url.href);
    seen.add(url.href);
  });
  if (urls.length === 0) throw new InputError(file, 'the URL list has no URL (one http:// or https:// address per line)');
  return urls;
}

/** Whether a data source or a doc's path is a URL rather than a file. */
export function isHttpUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}
