import { builtinModules } from 'node:module';
import { defineConfig } from 'vite';
import pkg from './package.json' with { type: 'json' };

const bundled = ['ws', 'execa'];
const external = ['electron', ...builtinModules, ...builtinModules.map((m) => `node:${m}`), ...Object.keys(pkg.dependencies).filter((d) => !bundled.includes(d)), 'bufferutil', 'utf-8-validate'];

/** Main process and headless CLI: ESM for Node 20 (the CLI) and Electron's Node (the app). */
export default defineConfig({
  ssr: { noExternal: bundled },
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
