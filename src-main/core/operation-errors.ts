/**
 * How an operation (a request the manager works on) reports progress and fails. Its own module because the
 * service and the python-env steps both need it.
 */
import type { ProgressMessage } from '../../src-shared/protocol.js';

export type Report = (message: ProgressMessage) => void;

export class OperationError extends Error {}

/** An operation error whose message (whole sentences) the requester sees, not just the log. */
export class ReportedError extends OperationError {}
