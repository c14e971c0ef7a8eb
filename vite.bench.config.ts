import { builtinModules } from 'node:module';
import { defineConfig } from 'vite';

const external = [...builtinModules, ...builtinModules.map((m) => `node:${m}`), 'ws', 'execa'];

/** The benchmark (`npm run bench`): its own output dir, so electron-builder never packs it with dist/main. */
export default defineConfig({
  build: {
    ssr: true,
    outDir: 'dist/bench',
    emptyOutDir: true,
    target: 'node20',
    rolldownOptions: {
      input: { bench: 'bench/main.ts' },
      external,
      output: { format: 'es', entryFileNames: '[name].js' },
    },
  },
});
