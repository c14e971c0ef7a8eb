// Renders the SVG sources in assets/src/ to every PNG, ICO and ICNS the platforms need, with Debian's
// Chromium through playwright-core (no image tool is needed besides it). Run after editing an SVG:
//   node scripts/make-icons.mjs        (CHROMIUM=/path/to/chromium to use another binary)
// The outputs are committed; builds and tests never run this.
import { Buffer } from 'node:buffer';
import console from 'node:console';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import process from 'node:process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const assets = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'assets');
const TRAY_STATES = ['running', 'busy', 'stopped', 'error'];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
});
const page = await browser.newPage({ deviceScaleFactor: 1 });

/** One SVG at one size; `template` turns every colour black and keeps the alpha (macOS template images). */
async function render(svgFile, size, template = false) {
  const svg = (await readFile(path.join(assets, 'src', svgFile), 'utf8')).replace(/width="\d+" height="\d+"/, `width="${size}" height="${size}"`);
  await page.setViewportSize({ width: size, height: size });
  await page.setContent(`<html><body style="margin:0;background:transparent"><div style="width:${size}px;height:${size}px;${template ? 'filter:brightness(0)' : ''}">${svg}</div></body></html>`);
  return page.screenshot({ omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } });
}

/** ICO with PNG-compressed entries (Windows Vista and later read these). */
function ico(images) {
  const header = Buffer.alloc(6 + 16 * images.length);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2);
  header.writeUInt16LE(images.length, 4);
  let offset = header.length;
  images.forEach(({ size, png }, i) => {
    const entry = 6 + 16 * i;
    header.writeUInt8(size >= 256 ? 0 : size, entry);
    header.writeUInt8(size >= 256 ? 0 : size, entry + 1);
    header.writeUInt16LE(1, entry + 4);
    header.writeUInt16LE(32, entry + 6);
    header.writeUInt32LE(png.length, entry + 8);
    header.writeUInt32LE(offset, entry + 12);
    offset += png.length;
  });
  return Buffer.concat([header, ...images.map((image) => image.png)]);
}

/** ICNS with PNG entries: OSType per size (icp4 16, icp5 32, ic07 128, ic08 256, ic09 512, ic10 1024). */
function icns(images) {
  const types = { 16: 'icp4', 32: 'icp5', 128: 'ic07', 256: 'ic08', 512: 'ic09', 1024: 'ic10' };
  const chunks = images.map(({ size, png }) => {
    const head = Buffer.alloc(8);
    head.write(types[size], 0, 'ascii');
    head.writeUInt32BE(png.length + 8, 4);
    return Buffer.concat([head, png]);
  });
  const head = Buffer.alloc(8);
  head.write('icns', 0, 'ascii');
  head.writeUInt32BE(8 + chunks.reduce((n, c) => n + c.length, 0), 4);
  return Buffer.concat([head, ...chunks]);
}

const appSizes = [16, 32, 48, 64, 128, 256, 512, 1024];
const app = {};
await mkdir(path.join(assets, 'icons'), { recursive: true });
for (const size of appSizes) {
  app[size] = await render('icon.svg', size);
  // electron-builder's Linux icon set: a folder of <size>x<size>.png.
  if (size <= 512) await writeFile(path.join(assets, 'icons', `${size}x${size}.png`), app[size]);
}
await writeFile(path.join(assets, 'icon.png'), app[512]);
await writeFile(path.join(assets, 'icon.ico'), ico([16, 32, 48, 256].map((size) => ({ size, png: app[size] }))));
await writeFile(path.join(assets, 'icon.icns'), icns([16, 32, 128, 256, 512, 1024].map((size) => ({ size, png: app[size] }))));

await mkdir(path.join(assets, 'tray'), { recursive: true });
for (const state of TRAY_STATES) {
  const svg = `tray-${state}.svg`;
  const out = (name) => path.join(assets, 'tray', name);
  const [x1, x2] = [await render(svg, 16), await render(svg, 32)];
  await writeFile(out(`tray-${state}.png`), x1);
  await writeFile(out(`tray-${state}@2x.png`), x2);
  await writeFile(out(`tray-${state}.ico`), ico([{ size: 16, png: x1 }, { size: 32, png: x2 }]));
  await writeFile(out(`tray-${state}Template.png`), await render(svg, 16, true));
  await writeFile(out(`tray-${state}Template@2x.png`), await render(svg, 32, true));
}
await browser.close();
console.log(`Wrote icons to ${assets}`);
