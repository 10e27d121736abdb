/**
 * The eval's HTML report: one self-contained file (thumbnails are data: URIs made with sharp, the
 * chart is inline SVG; no external file, script or CDN), so it can be mailed or archived as is.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { RANKERS, type RankMode } from '../search/index.js';
import type { EvalResult, QueryOutcome } from './evaluate.js';
import { METRIC_LABELS, METRIC_NAMES, type QueryMetrics } from './metrics.js';

export interface ReportOptions {
  /** Sample queries shown per class (default 2). */
  readonly samplesPerClass?: number;
  /** Results shown per sample query and mode (default 10, at most what eval kept). */
  readonly top?: number;
  /** Longest thumbnail side in pixels (default 80). */
  readonly thumbSize?: number;
}

const MODE_COLORS: Record<RankMode, string> = { expanded: '#9467bd', bimatch: '#1f77b4', whole: '#ff7f0e', chamfer: '#2ca02c' };

export async function writeHtmlReport(file: string, result: EvalResult, options: ReportOptions = {}): Promise<void> {
  const html = await renderHtmlReport(result, options);
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  fs.writeFileSync(file, html);
}

export async function renderHtmlReport(result: EvalResult, options: ReportOptions = {}): Promise<string> {
  const top = options.top ?? 10;
  const thumbs = new Thumbnails(options.thumbSize ?? 80);
  const samples = sampleQueries(result.outcomes, options.samplesPerClass ?? 2);
  const sampleBlocks: string[] = [];
  for (const outcome of samples) sampleBlocks.push(await sampleBlock(result, outcome, top, thumbs));
  const css = `
    body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
    table { border-collapse: collapse; margin: 8px 0 16px; }
    th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
    th:first-child, td:first-child { text-align: left; }
    .sample { margin: 14px 0; padding-top: 8px; border-top: 1px solid #eee; }
    .row { display: flex; align-items: flex-start; gap: 6px; margin: 4px 0; overflow-x: auto; }
    .mode { flex: none; width: 90px; font-size: 12px; color: #555; padding-top: 4px; }
    figure { flex: none; margin: 0; text-align: center; font-size: 11px; color: #444; }
    figure img { display: block; border: 4px solid #999; border-radius: 3px; }
    figure.query img { border-color: #1f4fd8; }
    figure.hit img { border-color: #2ca02c; }
    figure.miss img { border-color: #d62728; }
    .missing { display: inline-block; background: #eee; color: #777; font-size: 10px; overflow: hidden; }
    .note { color: #555; font-size: 13px; }`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flower-native eval: ${escapeHtml(result.workspace)}</title>
<style>${css}</style></head><body>
<h1>Retrieval quality, leave-one-out</h1>
<p class="note">Workspace <code>${escapeHtml(result.workspace)}</code>: ${result.docs} docs, ${result.chunks} chunks,
${result.queries} labelled queries${result.unlabelled ? `, ${result.unlabelled} unlabelled docs (ranked, never relevant)` : ''}.
Every labelled doc queries the others with its stored chunk vectors; relevant = same class. Computed in ${result.seconds.toFixed(1)} s.</p>
<h2>Overall</h2>
${overallTable(result)}
<p class="note">${result.modes.map((mode) => `<b>${mode}</b>: ${escapeHtml(RANKERS[mode].describe)}, scores ${result.meanReturned[mode].toFixed(0)} of ${result.docs - 1} docs per query on average`).join('; ')}.
Docs a mode does not score tie at the bottom of its ranking, which caps BiMatch's full mAP.<br>
P@k = relevant docs among the first k / k. AP = mean over the relevant docs of the precision at their rank (over the whole ranking);
AP@10 = sum of the precision at each relevant rank ≤ 10, divided by min(relevant docs, 10). Tied scores count as the expected value over their orders.</p>
<h2>Per class</h2>
${classTable(result)}
${classChart(result, 'ap', 'mAP')}
${classChart(result, 'p10', 'P@10')}
<h2>Sample queries</h2>
<p class="note">Blue: the query. Green: same class. Red: another class. The score is the ranker's.</p>
${sampleBlocks.join('\n')}
</body></html>
`;
}

function overallTable(result: EvalResult): string {
  const header = `<tr><th>mode</th>${METRIC_NAMES.map((m) => `<th>${METRIC_LABELS[m]}</th>`).join('')}</tr>`;
  const rows = result.modes.map((mode) => `<tr><td>${mode}</td>${METRIC_NAMES.map((m) => `<td>${result.overall[mode][m].toFixed(3)}</td>`).join('')}</tr>`);
  return `<table>${header}${rows.join('')}</table>`;
}

/** Every metric of every class, a row per class and mode. */
function classTable(result: EvalResult): string {
  const header = `<tr><th>class</th><th>mode</th><th>queries</th>${METRIC_NAMES.map((m) => `<th>${METRIC_LABELS[m]}</th>`).join('')}</tr>`;
  const rows = result.classes.flatMap((cls) =>
    result.modes.map((mode) => `<tr><td>${escapeHtml(cls.label)}</td><td>${mode}</td><td>${cls.queries}</td>${METRIC_NAMES.map((m) => `<td>${cls.metrics[mode][m].toFixed(3)}</td>`).join('')}</tr>`),
  );
  return `<table>${header}${rows.join('')}</table>`;
}

/** Horizontal grouped bars: one group per class, one bar per mode, 0..1 scale. */
function classChart(result: EvalResult, metric: keyof QueryMetrics, title: string): string {
  const labelWidth = 130;
  const plotWidth = 520;
  const bar = 9;
  const groupGap = 8;
  const top = 28;
  const groupHeight = result.modes.length * bar + groupGap;
  const height = top + result.classes.length * groupHeight + 24;
  const x = (v: number) => labelWidth + v * plotWidth;
  const parts: string[] = [];
  parts.push(`<text x="${labelWidth}" y="14" font-weight="bold">${escapeHtml(title)} per class</text>`);
  result.modes.forEach((mode, i) => {
    const lx = labelWidth + 170 + i * 110;
    parts.push(`<rect x="${lx}" y="5" width="10" height="10" fill="${MODE_COLORS[mode]}"/><text x="${lx + 14}" y="14">${mode}</text>`);
  });
  for (let tick = 0; tick <= 4; tick++) {
    const tx = x(tick / 4);
    parts.push(`<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${height - 20}" stroke="#ddd"/>`);
    parts.push(`<text x="${tx}" y="${height - 6}" text-anchor="middle" fill="#666">${(tick / 4).toFixed(2)}</text>`);
  }
  result.classes.forEach((cls, c) => {
    const gy = top + c * groupHeight;
    parts.push(`<text x="${labelWidth - 6}" y="${gy + (result.modes.length * bar) / 2 + 4}" text-anchor="end">${escapeHtml(cls.label)}</text>`);
    result.modes.forEach((mode, i) => {
      const value = cls.metrics[mode][metric];
      parts.push(
        `<rect x="${labelWidth}" y="${gy + i * bar}" width="${(value * plotWidth).toFixed(1)}" height="${bar - 1}" fill="${MODE_COLORS[mode]}"><title>${escapeHtml(cls.label)} ${mode} ${title} ${value.toFixed(3)}</title></rect>`,
      );
    });
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 20}" height="${height}" font-size="11" font-family="system-ui, sans-serif" role="img" aria-label="${escapeHtml(title)} per class">${parts.join('')}</svg>`;
}

/** `perClass` queries of every class, spread evenly over the class's queries. */
export function sampleQueries(outcomes: readonly QueryOutcome[], perClass: number): QueryOutcome[] {
  const byClass = new Map<string, QueryOutcome[]>();
  for (const outcome of outcomes) {
    const list = byClass.get(outcome.label) ?? [];
    list.push(outcome);
    byClass.set(outcome.label, list);
  }
  const samples: QueryOutcome[] = [];
  for (const list of byClass.values()) {
    const n = Math.min(perClass, list.length);
    for (let i = 0; i < n; i++) samples.push(list[Math.floor(((i + 0.5) * list.length) / n)]);
  }
  return samples;
}

async function sampleBlock(result: EvalResult, outcome: QueryOutcome, top: number, thumbs: Thumbnails): Promise<string> {
  const queryFigure = await figure('query', result.docPaths[outcome.doc], escapeHtml(outcome.label), thumbs);
  const rows: string[] = [];
  for (const mode of result.modes) {
    const figures: string[] = [];
    for (const hit of outcome.top[mode].slice(0, top)) {
      const caption = `${formatScore(hit.score)}<br>${escapeHtml(result.docLabels[hit.doc] ?? '?')}`;
      figures.push(await figure(hit.relevant ? 'hit' : 'miss', result.docPaths[hit.doc], caption, thumbs));
    }
    const m = outcome.metrics[mode];
    rows.push(`<div class="row"><div class="mode"><b>${mode}</b><br>AP ${m.ap.toFixed(3)}<br>P@10 ${m.p10.toFixed(2)}</div>${figures.join('')}</div>`);
  }
  return `<div class="sample"><div class="row">${queryFigure}<div class="note">${escapeHtml(path.basename(result.docPaths[outcome.doc]))} (${escapeHtml(outcome.label)})</div></div>${rows.join('')}</div>`;
}

async function figure(kind: 'query' | 'hit' | 'miss', file: string, caption: string, thumbs: Thumbnails): Promise<string> {
  const uri = await thumbs.dataUri(file);
  const title = escapeHtml(file);
  const image = uri
    ? `<img src="${uri}" alt="${escapeHtml(path.basename(file))}" title="${title}">`
    : `<span class="missing" style="width:${thumbs.size}px;height:${thumbs.size}px" title="${title}">unreadable: ${escapeHtml(path.basename(file))}</span>`;
  return `<figure class="${kind}">${image}<figcaption>${caption}</figcaption></figure>`;
}

/** Small JPEG thumbnails as data: URIs, one per file however often it appears. */
class Thumbnails {
  private readonly cache = new Map<string, Promise<string | null>>();
  constructor(readonly size: number) {}

  dataUri(file: string): Promise<string | null> {
    let uri = this.cache.get(file);
    if (!uri) {
      uri = sharp(file, { pages: 1 })
        .autoOrient()
        .resize(this.size, this.size, { fit: 'inside', withoutEnlargement: true })
        .flatten({ background: '#ffffff' })
        .jpeg({ quality: 70 })
        .toBuffer()
        .then(
          (bytes) => `data:image/jpeg;base64,${bytes.toString('base64')}`,
          () => null,
        ); // a moved or broken file gets a placeholder
      this.cache.set(file, uri);
    }
    return uri;
  }
}

/** BiMatch scores of well-matched docs crowd just below 1 (D_MISS is large): keep the digits that differ. */
function formatScore(score: number): string {
  if (score === Infinity) return 'same photo';
  if (!Number.isFinite(score)) return 'not returned';
  return Math.abs(1 - score) < 0.01 ? score.toFixed(6) : score.toFixed(3);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
