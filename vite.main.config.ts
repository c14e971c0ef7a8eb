import { builtinModules } from 'node:module';
import { defineConfig } from 'vite';

// ws's optional native addons stay out: ws falls back to JavaScript when they are missing.
const external = ['electron', ...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'bufferutil', 'utf-8-validate'];

/**
 * Main process and headless CLI: ESM for Node 20 (the CLI) and Electron's Node (the app). Every package is
 * bundled (ws, execa and its dependencies): Node skips its CommonJS loader at start (~45 ms, ~6.5 MiB less,
 * docs/performance.md) and the packaged app needs no node_modules.
 */
export default defineConfig({
  ssr: { noExternal: true },
  build: {
    ssr: true,
    outDir: 'dist/main',
    emptyOutDir: true,
    target: 'node20',
    sourcemap: true,
    rolldownOptions: {
      input: { index: 'src-main/index.ts', cli: 'src-main/cli.ts' },
      external,
      output: { format: 'es', entryFileNames: '[name].js', chunkFileNames: 'chunks/[name]-[hash].js' },
    },
  },
});
