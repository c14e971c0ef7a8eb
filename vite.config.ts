import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/** The renderer; `base: './'` so Electron can load it from disk. */
export default defineConfig({
  root: 'src-renderer',
  base: './',
  plugins: [react()],
  build: { outDir: '../dist/renderer', emptyOutDir: true },
});
