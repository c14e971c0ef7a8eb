// Venv workers made with pip, with the real FuncNodes: see test/helpers/real-venv-suite.ts.
import { describeVenvWorker } from './helpers/real-venv-suite.js';

describeVenvWorker('pip');
