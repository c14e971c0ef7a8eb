// Venv workers made with uv, with the real FuncNodes: see test/helpers/real-venv-suite.ts.
import { describeVenvWorker } from './helpers/real-venv-suite.js';

describeVenvWorker('uv');
