// Plays an HLS URL with hls.js in headless Chromium and prints one JSON line:
// {ok, codecsSupported, played_s, duration_s, ended, fatal, errors, fragments}.
// Usage: node play.mjs URL [min_played_seconds]
// The Go test in this directory runs it against a real wasmhls server.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const url = process.argv[2];
const minPlayed = Number(process.argv[3] || '0');
if (!url) {
  console.error('usage: node play.mjs URL [min_played_seconds]');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
    '--autoplay-policy=no-user-gesture-required'],
});
let result;
try {
  const page = await browser.newPage();
  await page.setContent('<video id="v" muted playsinline></video>');
  await page.addScriptTag({ path: require.resolve('hls.js/dist/hls.min.js') });
  result = await page.evaluate(async ({ url, minPlayed }) => {
    const video = document.getElementById('v');
    const out = { ok: false, codecsSupported: Hls.isSupported(), played_s: 0, duration_s: 0,
      ended: false, fatal: null, errors: [], fragments: 0 };
    if (!out.codecsSupported) return out;
    const hls = new Hls({ maxBufferLength: 10 });
    hls.on(Hls.Events.ERROR, (_, d) => {
      out.errors.push(`${d.type}/${d.details}${d.fatal ? ' (fatal)' : ''}`);
      if (d.fatal) out.fatal = d.details;
    });
    hls.on(Hls.Events.FRAG_BUFFERED, () => { out.fragments++; });
    hls.loadSource(url);
    hls.attachMedia(video);
    await new Promise((resolve) => {
      hls.on(Hls.Events.MANIFEST_PARSED, () => { video.playbackRate = 4; video.play().catch(() => {}); });
      video.addEventListener('ended', () => { out.ended = true; resolve(); });
      const timer = setInterval(() => {
        if (out.fatal) { clearInterval(timer); resolve(); }
      }, 200);
      // A bound on the whole run so a stuck player ends the script.
      setTimeout(resolve, 120000);
    });
    out.played_s = video.currentTime;
    out.duration_s = video.duration;
    out.ok = !out.fatal && out.played_s >= minPlayed;
    hls.destroy();
    return out;
  }, { url, minPlayed });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
