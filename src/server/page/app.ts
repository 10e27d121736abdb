/**
 * Browser side of the search page (compiled by tsc to dist/src/server/page/app.js and served as
 * /app.js). Pick, drop or paste an image → POST /search → grid of results; clicking a result
 * asks GET /docs/:id/similar (more like this from its stored vectors, no upload).
 */

interface Area {
  left: number;
  top: number;
  width: number;
  height: number;
}

interface Hit {
  rank: number;
  docId: number;
  score: number;
  label: string | null;
  path: string;
  thumb: string;
  image: string;
  /** Best-matching chunk as fractions of the doc's image, when the server knows it. */
  area?: Area;
  /** expanded: the doc taken for the same photo as the query. */
  samePhoto?: number;
}

interface SearchResponse {
  query: { bytes: number; format: string; width: number; height: number };
  results: Hit[];
  timings: Record<string, number>;
}

interface ErrorResponse {
  error: { code: string; message: string };
}

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`search page: #${id} missing`);
  return found as T;
}

const drop = element<HTMLDivElement>('drop');
const fileInput = element<HTMLInputElement>('file');
const preview = element<HTMLImageElement>('preview');
const statusLine = element<HTMLDivElement>('status');
const timingsLine = element<HTMLDivElement>('timings');
const resultsGrid = element<HTMLDivElement>('results');
const topSelect = element<HTMLSelectElement>('top');
const modeSelect = element<HTMLSelectElement>('mode');

/** Only the latest search may paint results (an older, slower one is dropped). */
let latestSearch = 0;
let previewUrl: string | null = null;

function setStatus(text: string, isError = false): void {
  statusLine.textContent = text;
  statusLine.classList.toggle('error', isError);
}

function showPreview(image: Blob): void {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(image);
  preview.src = previewUrl;
  drop.classList.add('has-image');
}

async function search(image: Blob, name: string): Promise<void> {
  const ticket = ++latestSearch;
  showPreview(image);
  setStatus(`Searching for ${name}…`);
  timingsLine.textContent = '';
  document.body.setAttribute('aria-busy', 'true');
  try {
    const query = new URLSearchParams({ top: topSelect.value, mode: modeSelect.value });
    const response = await fetch(`/search?${query}`, {
      method: 'POST',
      headers: { 'content-type': image.type || 'application/octet-stream' },
      body: image,
    });
    const body = (await response.json()) as SearchResponse | ErrorResponse;
    if (ticket !== latestSearch) return;
    if ('error' in body) {
      resultsGrid.replaceChildren();
      const retry = response.headers.get('retry-after');
      setStatus(`${body.error.message}${retry ? ` (retry in ${retry} s)` : ''}`, true);
      return;
    }
    renderResults(body, name);
  } catch (err) {
    if (ticket === latestSearch) setStatus(`Search failed: ${err instanceof Error ? err.message : String(err)}`, true);
  } finally {
    if (ticket === latestSearch) document.body.removeAttribute('aria-busy');
  }
}

function renderResults(response: SearchResponse, name: string): void {
  const { results, timings, query } = response;
  setStatus(results.length ? `${results.length} results for ${name}${query.width ? ` (${query.width}×${query.height})` : ''}` : `No results for ${name}`);
  timingsLine.textContent = Object.entries(timings)
    .map(([stage, ms]) => `${stage} ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`)
    .join(' · ');
  // expanded scores are cosines: a match percentage and a bar of that length; BiMatch's need the log stretch.
  const cosine = modeSelect.value === 'expanded';
  const digits = scoreDigits(results.map((hit) => hit.score));
  const bars = cosine ? results.map((hit) => Math.max(0.03, hit.score)) : barLengths(results.map((hit) => hit.score));
  resultsGrid.replaceChildren(...results.map((hit, i) => resultCard(hit, bars[i], cosine ? -1 : digits)));
}

/**
 * BiMatch scores of similar images differ only in the 4th or 5th decimal: show as many digits as
 * it takes for the scores on screen to differ (3 to 6).
 */
function scoreDigits(scores: readonly number[]): number {
  const distinctAt = (digits: number): number => new Set(scores.map((score) => score.toFixed(digits))).size;
  let digits = 3;
  while (digits < 6 && distinctAt(digits) < distinctAt(6)) digits++;
  return digits;
}

/**
 * Bar length: where a result's distance from a perfect score (1 - score) lies between the best and
 * the worst on screen, on a log scale, so an exact duplicate at the top or one outlier at the
 * bottom does not flatten every other bar.
 */
function barLengths(scores: readonly number[]): number[] {
  const distance = (score: number): number => Math.log(Math.max(1e-6, 1 - score));
  const best = distance(Math.max(...scores));
  const worst = distance(Math.min(...scores));
  return scores.map((score) => (worst > best ? Math.max(0.03, 1 - (distance(score) - best) / (worst - best)) : 1));
}

function resultCard(hit: Hit, barFraction: number, digits: number): HTMLElement {
  const label = hit.label ?? 'unlabelled';
  const card = document.createElement('button');
  card.type = 'button';
  card.className = 'result';
  card.dataset.docId = String(hit.docId);
  card.title = `${hit.path}\nclick to search with this image`;

  const frame = document.createElement('div');
  frame.className = 'frame';
  const pic = document.createElement('div');
  pic.className = 'pic';
  const img = document.createElement('img');
  img.src = hit.thumb;
  img.alt = `${label}, rank ${hit.rank}`;
  img.loading = 'lazy';
  pic.append(img);
  if (hit.area) {
    const box = document.createElement('div');
    box.className = 'box';
    box.style.left = `${hit.area.left * 100}%`;
    box.style.top = `${hit.area.top * 100}%`;
    box.style.width = `${hit.area.width * 100}%`;
    box.style.height = `${hit.area.height * 100}%`;
    pic.append(box);
  }
  frame.append(pic);

  const bar = document.createElement('div');
  bar.className = 'bar';
  const fill = document.createElement('span');
  fill.style.width = `${barFraction * 100}%`;
  bar.append(fill);

  const meta = document.createElement('div');
  meta.className = 'meta';
  const labelSpan = document.createElement('span');
  labelSpan.className = 'label';
  labelSpan.textContent = label;
  const score = document.createElement('span');
  score.className = 'score';
  score.textContent = digits < 0 ? `${Math.round(100 * Math.max(0, hit.score))}%${hit.samePhoto === undefined ? '' : ' · same photo'}` : hit.score.toFixed(digits);
  meta.append(labelSpan, score);

  const sub = document.createElement('div');
  sub.className = 'sub';
  const rank = document.createElement('span');
  rank.textContent = `#${hit.rank}`;
  const id = document.createElement('span');
  id.textContent = `doc ${hit.docId}`;
  sub.append(rank, id);

  card.append(frame, bar, meta, sub);
  card.addEventListener('click', () => void searchWithDoc(hit, label));
  return card;
}

/** More like this: the server ranks with the doc's stored vectors (no upload, no encoding). */
async function searchWithDoc(hit: Hit, label: string): Promise<void> {
  const ticket = ++latestSearch;
  preview.src = hit.image;
  drop.classList.add('has-image');
  setStatus(`Searching like doc ${hit.docId}…`);
  const query = new URLSearchParams({ top: topSelect.value, mode: modeSelect.value });
  const response = await fetch(`/docs/${hit.docId}/similar?${query}`);
  const body = (await response.json()) as SearchResponse | ErrorResponse;
  if (ticket !== latestSearch) return;
  if ('error' in body) setStatus(body.error.message, true);
  else renderResults({ ...body, query: { bytes: 0, format: 'indexed', width: 0, height: 0 } }, `${label} (doc ${hit.docId})`);
}

function pickFirstImage(files: FileList | null | undefined): void {
  const file = files?.[0];
  if (file) void search(file, file.name);
}

// A file the browser cannot show (not an image, or a format it lacks) leaves no broken icon.
preview.addEventListener('error', () => drop.classList.remove('has-image'));
drop.addEventListener('click', () => fileInput.click());
drop.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' || event.key === ' ') {
    event.preventDefault();
    fileInput.click();
  }
});
element<HTMLButtonElement>('pick').addEventListener('click', () => fileInput.click());
fileInput.addEventListener('change', () => {
  pickFirstImage(fileInput.files);
  fileInput.value = '';
});
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  pickFirstImage(event.dataTransfer?.files);
});
document.addEventListener('paste', (event) => {
  const file = Array.from(event.clipboardData?.files ?? []).find((f) => f.type.startsWith('image/'));
  if (file) void search(file, 'pasted image');
});

fetch('/healthz')
  .then((response) => response.json())
  .then((health: { docs: number; chunks: number }) => {
    element<HTMLDivElement>('stats').textContent = `${health.docs.toLocaleString()} images · ${health.chunks.toLocaleString()} chunks indexed`;
  })
  .catch(() => {});
