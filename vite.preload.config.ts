import { defineConfig } from 'vite';

/** A sandboxed preload must be one CommonJS file that requires only `electron`. */
export default defineConfig({
  build: {
    ssr: 'src-preload/index.ts',
    outDir: 'dist/preload',
    emptyOutDir: true,
    target: 'node20',
    rolldownOptions: {
      external: ['electron'],
      output: { format: 'cjs', entryFileNames: 'index.cjs' },
    },
  },
  ssr: { noExternal: true },
});
