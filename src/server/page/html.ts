/**
 * The search page's HTML and CSS. Everything is served by this server (the script at /app.js is
 * compiled from ./app.ts): no CDN, no fonts, no external requests, so it works offline.
 */

/** Allows only this origin's script and images (plus blob: previews of the picked image). */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' blob:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STYLE = `
  :root { --bg: #f6f7f4; --card: #fff; --ink: #1f2a1f; --muted: #66705f; --accent: #2f7d4a; --accent-soft: #e3f0e6; --line: #dfe3da; --error: #b3261e; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--ink); }
  header { display: flex; align-items: baseline; gap: 1rem; padding: 0.9rem 1.5rem; background: var(--card); border-bottom: 1px solid var(--line); }
  header h1 { margin: 0; font-size: 1.25rem; letter-spacing: 0.01em; }
  header h1 span { color: var(--accent); }
  #stats { color: var(--muted); font-size: 0.9rem; }
  main { display: grid; grid-template-columns: minmax(240px, 300px) 1fr; gap: 1.5rem; padding: 1.5rem; align-items: start; }
  @media (max-width: 760px) { main { grid-template-columns: 1fr; } }
  #query { position: sticky; top: 1rem; display: flex; flex-direction: column; gap: 0.8rem; }
  #drop { display: flex; flex-direction: column; align-items: center; justify-content: center; gap: 0.5rem; min-height: 220px; padding: 1rem;
    border: 2px dashed #b9c4b3; border-radius: 12px; background: var(--card); text-align: center; color: var(--muted); cursor: pointer; transition: border-color .15s, background .15s; }
  #drop:hover, #drop.over { border-color: var(--accent); background: var(--accent-soft); }
  #drop:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
  #drop img { max-width: 100%; max-height: 260px; border-radius: 8px; display: none; }
  #drop.has-image img { display: block; }
  #drop.has-image .hint-big, #drop.has-image .when-empty, #drop:not(.has-image) .when-image { display: none; }
  .hint-big { font-size: 1.05rem; color: var(--ink); }
  .hint { font-size: 0.85rem; }
  .controls { display: flex; gap: 0.6rem; align-items: center; flex-wrap: wrap; }
  button, select { font: inherit; padding: 0.45rem 0.8rem; border-radius: 8px; border: 1px solid var(--line); background: var(--card); color: var(--ink); cursor: pointer; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  button:focus-visible, select:focus-visible { outline: 3px solid var(--accent); outline-offset: 1px; }
  #status { min-height: 1.4em; font-size: 0.9rem; color: var(--muted); }
  #status.error { color: var(--error); font-weight: 600; }
  #timings { font-size: 0.8rem; color: var(--muted); font-variant-numeric: tabular-nums; }
  #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 1rem; }
  #results:empty::before { content: "Results appear here: drop a flower photo, pick a file, or paste an image."; color: var(--muted); grid-column: 1 / -1; padding: 2rem 0; }
  .result { display: flex; flex-direction: column; background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; cursor: pointer;
    transition: transform .12s, box-shadow .12s; text-align: left; padding: 0; }
  .result:hover, .result:focus-visible { transform: translateY(-2px); box-shadow: 0 6px 18px rgba(31, 42, 31, 0.12); }
  .frame { display: flex; align-items: center; justify-content: center; height: 170px; background: #eef0ea; }
  .pic { position: relative; display: inline-block; line-height: 0; max-width: 100%; }
  .pic img { display: block; max-width: 100%; max-height: 170px; }
  .box { position: absolute; border: 2px solid #ffd54a; box-shadow: 0 0 0 1px rgba(0,0,0,0.45); border-radius: 2px; pointer-events: none; }
  .meta { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: baseline; column-gap: 0.5rem; padding: 0.5rem 0.7rem; }
  .label { font-weight: 600; text-transform: capitalize; overflow-wrap: anywhere; }
  .score { font-variant-numeric: tabular-nums; color: var(--accent); font-weight: 600; }
  .sub { display: flex; justify-content: space-between; padding: 0 0.7rem 0.55rem; font-size: 0.78rem; color: var(--muted); }
  .bar { height: 4px; background: var(--accent-soft); }
  .bar span { display: block; height: 100%; background: var(--accent); }
`;

/** A small daisy, so the browser has an icon to show and does not ask for /favicon.ico. */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">${Array.from(
  { length: 8 },
  (_, i) => `<ellipse cx="16" cy="7" rx="3.6" ry="7" fill="#fff" stroke="#9aa88f" stroke-width="0.8" transform="rotate(${i * 45} 16 16)"/>`,
).join('')}<circle cx="16" cy="16" r="5" fill="#f2b705"/></svg>`;

export function searchPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flower-native search</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>${STYLE}</style>
<script type="module" src="/app.js"></script>
</head>
<body>
<header><h1>flower-<span>native</span> search</h1><div id="stats"></div></header>
<main>
  <section id="query" aria-label="Query image">
    <div id="drop" tabindex="0" role="button" aria-label="Drop an image here or press Enter to pick a file">
      <img id="preview" alt="Query image">
      <div class="hint-big">Drop a flower photo here</div>
      <div class="hint when-empty">or click to pick a file · paste works too</div>
      <div class="hint when-image">drop, paste or click to search with another image</div>
    </div>
    <input id="file" type="file" accept="image/*" hidden>
    <div class="controls">
      <button id="pick" class="primary" type="button">Choose image…</button>
      <label>Top <select id="top"><option>8</option><option selected>12</option><option>24</option><option>48</option></select></label>
      <label>Rank by <select id="mode"><option value="expanded" selected>best match (same photo first)</option><option value="bimatch">matching regions</option><option value="whole">whole image</option></select></label>
    </div>
    <div id="status" role="status" aria-live="polite"></div>
    <div id="timings"></div>
  </section>
  <section aria-label="Results"><div id="results"></div></section>
</main>
</body>
</html>
`;
}
