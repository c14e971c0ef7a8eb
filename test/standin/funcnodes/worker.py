"""The worker: runstate/.p/JSON file life cycle and the WebSocket command protocol (spec 5, 14)."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import sys
import types
import uuid as uuidlib
from typing import Any, Coroutine, NoReturn

from . import __version__, ws
from .config import Options, WorkerFiles, complete_config, env_float, env_int, find_worker, read_json, resolve_config_dir, write_json_atomic

COMMANDS = ("uuid", "name", "stop_worker")
PORT_RETRY = 5.0  # the real worker retries an exhausted port range every 5 s
SIGNAL_EXIT_DELAY = 0.2  # SIGTERM/SIGINT: stop, then exit promptly


def _progress(value: float) -> dict:
    return {"type": "progress", "message": "Stopping worker", "status": "info", "progress": value, "blocking": False}


def _noise(i: int) -> dict:
    if i % 2 == 0:
        return {"type": "nsevent", "event": "noise", "data": {}}
    return {"type": "progress", "message": "noise", "status": "info", "progress": 0.5, "blocking": False}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _setup_logging(files: WorkerFiles, debug: bool) -> None:
    os.makedirs(files.data_dir, exist_ok=True)
    root = logging.getLogger("funcnodes")
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    fmt = logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(files.log, encoding="utf-8")):
        handler.setFormatter(fmt)
        root.addHandler(handler)


class Worker:
    def __init__(self, files: WorkerFiles, config: dict, opts: Options) -> None:
        self.files = files
        self.uuid = files.uuid
        self.config = complete_config(config, self.uuid)
        self.opts = opts
        self.log = logging.getLogger(f"funcnodes.{self.uuid}")
        self.clients: list[ws.WebSocket] = []  # in connection order: the first one is the oldest
        self.server: asyncio.Server | None = None
        self.nodespace: Any = None
        self.stopping = False
        self._tasks: set[asyncio.Task] = set()
        self._exit: asyncio.Future[int] | None = None

    # ---- life cycle -------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._exit = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        self._spawn(self._boot())
        code = await self._exit
        if self.server:
            self.server.close()
        for conn in list(self.clients):
            conn.abort()  # no close frame: peers see 1006, as when the real process exits
        await asyncio.sleep(0.05)  # let the connection handlers see EOF and finish
        return code

    async def _boot(self) -> None:
        self._write_p()
        self._set_runstate("starting\nLoading packages")
        conf = read_json(self.files.json)
        if isinstance(conf, dict):
            self.config = complete_config(conf, self.uuid)
        self._set_runstate("starting\nLoading config")
        self._write_p()
        await asyncio.sleep(self.opts.boot_delay / 2)
        self._set_runstate("starting\nLoading nodespace")
        os.makedirs(self.files.data_dir, exist_ok=True)
        self.nodespace = read_json(self.files.nodespace)
        await asyncio.sleep(self.opts.boot_delay / 2)
        self._set_runstate("running")
        self._spawn(self._p_loop())
        if self.opts.never_bind:
            self.log.info("never_bind: not opening the WebSocket server")
            self._start_crash_timer()
        else:
            await self._bind()

    async def _bind(self) -> None:
        port = self.config["port"]
        first = port if isinstance(port, int) else env_int("FUNCNODES_WS_WORKER_STARTPORT", 9382)
        last = max(first, env_int("FUNCNODES_WS_WORKER_ENDPORT", 9582))
        host = self.config["host"]
        while True:
            for port in range(first, last + 1):
                try:
                    self.server = await ws.serve(self._handle, host, port)
                except OSError as err:
                    if err.errno == errno.EADDRINUSE:
                        continue
                    self._crash(1, f"cannot bind {host}:{port}: {err}")
                self.log.info("Server running on ws://%s:%s", host, port)
                self.config["port"] = port
                self._save_config()
                self._start_crash_timer()
                return
            self.log.error("No free ports available")
            await asyncio.sleep(PORT_RETRY)

    async def _p_loop(self) -> None:
        """Every P seconds: run a command found in .p, refuse a second live owner, rewrite .p (spec 2.5)."""
        interval = env_float("FUNCNODES_STANDIN_P_INTERVAL", 5.0)
        while not self.stopping:
            await self._check_p()
            if self.stopping:
                return
            self._write_p()
            await asyncio.sleep(interval)

    async def _check_p(self) -> None:
        try:
            with open(self.files.p, encoding="utf-8") as f:
                content = json.loads(f.read())
        except (OSError, ValueError):
            return
        if isinstance(content, bool) or not isinstance(content, int):
            cmd = content.get("cmd") if isinstance(content, dict) else None
            self.log.info("Command from the process file: %r", content)
            if cmd == "stop_worker":
                if not self.opts.ignore_stop:
                    await self._stop()
            elif cmd not in COMMANDS:
                self.log.error("Unknown command %s in the process file", cmd)
        elif content != os.getpid() and _pid_alive(content):
            self.log.error("Worker already running")
            await self._stop(own_files=False)  # the files belong to the other process now

    def _start_crash_timer(self) -> None:
        if self.opts.crash_after is not None:
            self._spawn(self._crash_later(self.opts.crash_after))

    async def _crash_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._crash(3, "crash_after: exiting without cleanup")

    def _crash(self, code: int, reason: str) -> NoReturn:
        """Die like a crashed worker: no cleanup, so .p and .runstate stay behind."""
        self.log.error(reason)
        logging.shutdown()
        os._exit(code)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.opts.ignore_stop:
            self.log.info("ignore_stop: ignoring %s", sig.name)
            return
        self.log.info("Received %s", sig.name)
        self._spawn(self._stop(exit_delay=SIGNAL_EXIT_DELAY))

    async def _stop(
        self, requester: ws.WebSocket | None = None, req_id: Any = None, *, own_files: bool = True,
        exit_delay: float | None = None,
    ) -> None:
        """The stop sequence as measured on the real worker (spec 14.1)."""
        if self.stopping:
            if requester:
                await self._result(requester, True, req_id)
            return
        self.stopping = True
        self.log.info("Stopping worker")
        for task in self._tasks - {asyncio.current_task()}:
            task.cancel()  # boot, bind, .p loop, crash timer
        live = [c for c in self.clients if not c.closed]
        # aiohttp >= 3.10.4 (what FuncNodes pins) writes the oldest client's close frame before the
        # progress, so it sees only the close; aiohttp 3.8 sent it the progress first (spec 14.9).
        await self._broadcast(_progress(0.0), live if self.opts.stop_order == "aiohttp-3.8" else live[1:])
        if own_files:
            self._set_runstate("stopped")
            self._save_config()
            write_json_atomic(self.files.nodespace, self.nodespace or self._empty_nodespace())
        if live:
            # Only the oldest client is closed; the others keep the connection until the process exits.
            await live[0].close(1001, "Server shutting down")
        if own_files:
            _remove(self.files.p)
            _remove(self.files.runstate)
        others = live[1:]
        await self._broadcast(_progress(1.0), others)
        if requester in others:
            await self._result(requester, True, req_id)
        await self._broadcast({"type": "workerevent", "event": "stopping", "data": {"data": {}}}, others)
        if exit_delay is None:
            exit_delay = env_float("FUNCNODES_STANDIN_STOP_DELAY", 1.7)
        self._spawn(self._exit_later(exit_delay, own_files))

    async def _exit_later(self, delay: float, own_files: bool) -> None:
        # The server keeps answering meanwhile. Like the real worker, a second internal stop
        # rewrites and deletes .runstate and .p (of a new instance, if one was started too early),
        # and `removed` is written shortly before exit.
        second_stop = 0.6 * delay
        await asyncio.sleep(second_stop)
        if own_files:
            self._set_runstate("stopped")
            _remove(self.files.p)
            _remove(self.files.runstate)
        removed_at = max(second_stop, delay - 0.1)
        await asyncio.sleep(removed_at - second_stop)
        if own_files:
            self._set_runstate("removed")
        await asyncio.sleep(delay - removed_at)
        self.log.info("Worker stopped")
        assert self._exit is not None
        self._exit.set_result(0)

    # ---- files --------------------------------------------------------------------------------

    def _write_p(self) -> None:
        with open(self.files.p, "w", encoding="utf-8") as f:
            f.write(str(os.getpid()))

    def _set_runstate(self, state: str) -> None:
        with open(self.files.runstate, "w", encoding="utf-8") as f:
            f.write(state)

    def _save_config(self) -> None:
        self.config["pid"] = os.getpid()
        self.config = complete_config(self.config, self.uuid)
        write_json_atomic(self.files.json, self.config)

    def _empty_nodespace(self) -> dict:
        return {
            "backend": {"nodes": [], "edges": [], "prop": {}, "groups": {}},
            "view": {"renderoptions": {"typemap": {}, "inputconverter": {}}},
            "meta": {"id": uuidlib.uuid4().hex, "version": __version__},
            "external_workers": {},
        }

    # ---- WebSocket ---------------------------------------------------------------------------

    async def _handle(self, conn: ws.WebSocket) -> None:
        self.clients.append(conn)
        try:
            async for message in conn.messages():
                if isinstance(message, bytes):
                    continue
                try:
                    data = json.loads(message)
                except ValueError:
                    await conn.close(1000)  # measured: non-JSON text closes the connection
                    continue
                if isinstance(data, dict):  # arrays and other values are ignored
                    await self._dispatch(conn, data)
        finally:
            self.clients.remove(conn)

    async def _dispatch(self, conn: ws.WebSocket, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "ping":
            await self._broadcast({"type": "pong"})
        elif kind == "cmd":
            cmd, req_id = msg.get("cmd"), msg.get("id")
            if cmd == "uuid":
                await self._result(conn, self.uuid if self.opts.wrong_uuid is None else self.opts.wrong_uuid, req_id)
            elif cmd == "name":
                await self._result(conn, self.config.get("name") or self.uuid, req_id)
            elif cmd == "stop_worker":
                if self.opts.ignore_stop:
                    self.log.info("ignore_stop: ignoring stop_worker")
                else:
                    await self._stop(conn, req_id)
            else:
                error = f"Unknown command {cmd} , available commands: {', '.join(COMMANDS)}"
                await self._broadcast({"type": "error", "error": error, "tb": [], "id": req_id})

    async def _result(self, conn: ws.WebSocket, result: Any, req_id: Any) -> None:
        for i in range(self.opts.noise):
            await self._broadcast(_noise(i))
        await conn.send_text(json.dumps({"type": "result", "result": result, "id": req_id}))

    async def _broadcast(self, msg: dict, clients: list[ws.WebSocket] | None = None) -> None:
        text = json.dumps(msg)
        for conn in list(self.clients if clients is None else clients):
            await conn.send_text(text)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def run_worker(files: WorkerFiles, config: dict, debug: bool) -> int:
    """`funcnodes worker --uuid U start`: run the worker in the foreground, return the exit code."""
    opts = Options.load(config)
    if opts.exit_at == "start":
        code = 1 if opts.exit_code is None else opts.exit_code
        print(f"standin: exit_at=start, exiting with code {code}", file=sys.stderr)
        return code
    if os.path.exists(files.p):
        # The real worker does not look at the pid here (spec 2.5, 14.7).
        print("Worker already running", file=sys.stderr)
        return 1
    _setup_logging(files, debug)
    return asyncio.run(Worker(files, config, opts).run())


# ------------------------------------------------------------ the entry points the manager's launcher uses
# (src-main/core/python-env/launcher.ts): the names the real CLI uses after its upgrade step.


class WSWorker:
    """`funcnodes.worker.WSWorker(uuid=, debug=).run_forever()`: runs the worker of that uuid."""

    def __init__(self, uuid: str, debug: bool = False) -> None:
        self.uuid, self.debug = uuid, debug

    def run_forever(self) -> None:
        workers_dir = os.path.join(resolve_config_dir(None), "workers")
        uuid, config = find_worker(workers_dir, self.uuid, None)
        code = run_worker(WorkerFiles(workers_dir, uuid), config, self.debug)
        if code:
            raise SystemExit(code)


class _WorkerManager:
    """`funcnodes.worker.worker_manager.WorkerManager(debug=).get_all_workercfg()`."""

    def __init__(self, debug: bool = False) -> None:
        self.workers_dir = os.path.join(resolve_config_dir(None), "workers")

    def get_all_workercfg(self) -> list[dict]:
        configs = []
        for fname in sorted(os.listdir(self.workers_dir)):
            if fname.startswith("worker_") and fname.endswith(".json"):
                conf = read_json(os.path.join(self.workers_dir, fname))
                if isinstance(conf, dict):
                    configs.append({**conf, "uuid": conf.get("uuid") or fname[len("worker_") : -len(".json")]})
        return configs


worker_manager = types.SimpleNamespace(WorkerManager=_WorkerManager)
