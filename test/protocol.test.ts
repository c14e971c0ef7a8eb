import { describe, expect, it } from 'vitest';
import { exitText, isRunningState, isValidWorkerId, parseClientFrame, parseManagerFrame, progress, RESET_PROGRESS } from '../src-shared/protocol.js';

describe('parseClientFrame', () => {
  it('matches plain commands exactly, case-sensitive and untrimmed', () => {
    for (const cmd of ['ping', 'identify', 'stop', 'worker_status']) {
      expect(parseClientFrame(cmd)).toEqual({ ok: true, request: { type: cmd } });
    }
    expect(parseClientFrame('new_worker')).toEqual({ ok: true, request: { type: 'new_worker', options: { copyLib: false, copyNS: false } } });
    for (const text of [' ping', 'PING', 'ping\n', 'hello', '{not json', '']) expect(parseClientFrame(text)).toEqual({ ok: false, silent: true });
  });

  it('reads worker-id requests and rejects invalid ones with a reason', () => {
    expect(parseClientFrame('{"type":"set_active","workerid":"abc_1-2","extra":1}')).toEqual({ ok: true, request: { type: 'set_active', workerid: 'abc_1-2' } });
    const cases: Array<[string, RegExp]> = [
      ['[1,2]', /JSON object/],
      ['"ping"', /JSON object/],
      ['{"foo":1}', /"type"/],
      ['{"type":"frobnicate"}', /Unknown request type "frobnicate"/],
      ['{"type":"set_active"}', /missing field "workerid"/],
      ['{"type":"stop_worker","workerid":5}', /must be a string/],
      ['{"type":"delete_worker","workerid":"../x"}', /not valid/],
      ['{"type":"delete_worker","workerid":"a/../../b"}', /not valid/],
      ['{"type":"delete_worker","workerid":"..\\\\x"}', /not valid/],
      [`{"type":"delete_worker","workerid":"${'a'.repeat(129)}"}`, /not valid/],
      ['{"type":"restart_worker","workerid":""}', /not valid/],
    ];
    for (const [text, reason] of cases) {
      const result = parseClientFrame(text);
      expect(result.ok, text).toBe(false);
      if (!result.ok && !result.silent) expect(result.error, text).toMatch(reason);
      else throw new Error(`${text} should get an error reply`);
    }
  });

  it('validates new_worker kwargs and keeps only what it honours', () => {
    expect(parseClientFrame('{"type":"new_worker"}')).toEqual({ ok: true, request: { type: 'new_worker', options: { copyLib: false, copyNS: false } } });
    const ui = parseClientFrame('{"type":"new_worker","kwargs":{"name":"demo","copyLib":false,"copyNS":false,"in_venv":true,"debug":true}}');
    expect(ui).toEqual({ ok: true, request: { type: 'new_worker', options: { name: 'demo', copyLib: false, copyNS: false, in_venv: true } } });
    const full = parseClientFrame('{"type":"new_worker","kwargs":{"uuid":"fixed1","reference":"ref_1","copyLib":true,"copyNS":true,"in_venv":null,"host":"127.0.0.1","port":9400}}');
    expect(full).toEqual({
      ok: true,
      request: { type: 'new_worker', options: { uuid: 'fixed1', reference: 'ref_1', copyLib: true, copyNS: true, host: '127.0.0.1', port: 9400 } },
    });
    // FuncNodes >= 1.7 takes `autostart` as a policy or a boolean (true is unless-stopped).
    for (const [given, policy] of [['"always"', 'always'], ['true', 'unless-stopped'], ['false', 'never']] as const) {
      expect(parseClientFrame(`{"type":"new_worker","kwargs":{"autostart":${given}}}`)).toEqual({
        ok: true,
        request: { type: 'new_worker', options: { copyLib: false, copyNS: false, autostart: policy } },
      });
    }
    for (const kwargs of ['[]', '"x"', '{"name":3}', '{"uuid":"x/../../evil"}', '{"uuid":"../evil"}', '{"copyLib":"yes"}', '{"in_venv":"1"}', '{"workertype":"Evil"}', '{"port":70000}', '{"reference":"a.b"}', '{"autostart":"sometimes"}']) {
      const result = parseClientFrame(`{"type":"new_worker","kwargs":${kwargs}}`);
      expect(result.ok, kwargs).toBe(false);
      expect(result.ok === false && result.silent, kwargs).toBe(false);
    }
  });

  it('knows valid ids', () => {
    expect(isValidWorkerId('my-worker_3f2a9c0d1b2e4f56')).toBe(true);
    expect(isValidWorkerId('a'.repeat(128))).toBe(true);
    for (const id of ['', 'a.b', 'a/b', 'a\\b', '..', 'a b', 'a'.repeat(129), 5, null]) expect(isValidWorkerId(id)).toBe(false);
  });
});

describe('worker states (shared by the tray, notifications and the dashboard)', () => {
  it('a worker runs while it is starting, active or stopping', () => {
    for (const state of ['active', 'starting', 'stopping'] as const) expect(isRunningState(state)).toBe(true);
    expect(isRunningState('inactive')).toBe(false);
    expect(isRunningState('crashed')).toBe(false);
  });

  it('says how a process ended: its signal, else its exit code', () => {
    expect(exitText({ code: null, signal: 'SIGKILL', at: 0 })).toBe('signal SIGKILL');
    expect(exitText({ code: 3, signal: null, at: 0 })).toBe('exit code 3');
    expect(exitText({ code: null, signal: null, at: 0 })).toBe('exit code unknown');
  });
});

describe('manager messages', () => {
  it('builds progress with the original key order and the reset frame', () => {
    expect(Object.keys(progress('x', 0.5))).toEqual(['type', 'message', 'status', 'progress', 'blocking']);
    expect(RESET_PROGRESS).toEqual({ type: 'progress', message: '', status: 'info', progress: 1, blocking: false });
  });

  it('classifies frames a client receives', () => {
    expect(parseManagerFrame('pong')).toEqual({ kind: 'pong' });
    expect(parseManagerFrame('{"class": "WorkerManager", "py": "/x"}').kind).toBe('identify');
    expect(parseManagerFrame('{"type": "worker_created", "uuid": "u"}')).toEqual({ kind: 'message', message: { type: 'worker_created', uuid: 'u' } });
    expect(parseManagerFrame('{"type": "pong"}').kind).toBe('unknown');
    expect(parseManagerFrame('nonsense').kind).toBe('unknown');
  });
});
