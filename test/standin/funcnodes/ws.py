"""Minimal RFC 6455 WebSocket server on asyncio streams (the real worker uses aiohttp).

Enough for the Workermanager protocol: text/binary messages (with continuation frames),
ping/pong, and close frames with code and reason. No extensions, no subprotocols.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import struct
from typing import AsyncIterator, Awaitable, Callable

logger = logging.getLogger("funcnodes.ws")

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 64 * 1024 * 1024
# How long a server-initiated close waits for the peer's close frame before dropping TCP.
CLOSE_TIMEOUT = 2.0


class ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _unmask(data: bytes, mask: bytes) -> bytes:
    # XOR as one big integer: fast enough for large frames without a per-byte loop.
    n = len(data)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


class WebSocket:
    """One accepted connection. `closed` means our close frame was sent: no more data frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()
        self.closed = False
        self.peer = writer.get_extra_info("peername")

    async def send_text(self, text: str) -> None:
        if not self.closed:
            await self._send_frame(OP_TEXT, text.encode())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame; the read loop drops the TCP connection when the peer answers."""
        if self.closed:
            return
        self.closed = True
        await self._send_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())
        asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._writer.close)

    def abort(self) -> None:
        self._writer.close()

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        async with self._lock:  # one drain at a time; frames never interleave
            try:
                self._writer.write(header + payload)
                await self._writer.drain()
            except (ConnectionError, RuntimeError):
                self.closed = True

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = await self._reader.readexactly(2)
        fin, opcode, length = bool(b0 & 0x80), b0 & 0x0F, b1 & 0x7F
        if b0 & 0x70:
            raise ProtocolError(1002, "reserved bits set")
        if not b1 & 0x80:
            raise ProtocolError(1002, "client frames must be masked")
        if length == 126:
            (length,) = struct.unpack("!H", await self._reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self._reader.readexactly(8))
        if opcode >= OP_CLOSE and (length > 125 or not fin):
            raise ProtocolError(1002, "invalid control frame")
        if length > MAX_MESSAGE:
            raise ProtocolError(1009, "message too big")
        mask = await self._reader.readexactly(4)
        return fin, opcode, _unmask(await self._reader.readexactly(length), mask)

    async def messages(self) -> AsyncIterator[str | bytes]:
        """Yield complete data messages until the connection ends; control frames are handled here."""
        parts: list[bytes] = []
        msg_op: int | None = None
        try:
            while True:
                fin, opcode, payload = await self._read_frame()
                if opcode == OP_PING:
                    await self._send_frame(OP_PONG, payload)
                    continue
                if opcode == OP_PONG:
                    continue
                if opcode == OP_CLOSE:
                    # Echo the peer's code (RFC 6455 5.5.1); closing TCP happens in `finally`.
                    await self.close(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000)
                    return
                if opcode == OP_CONT:
                    if msg_op is None:
                        raise ProtocolError(1002, "unexpected continuation frame")
                elif opcode in (OP_TEXT, OP_BINARY):
                    if msg_op is not None:
                        raise ProtocolError(1002, "expected continuation frame")
                    msg_op, parts = opcode, []
                else:
                    raise ProtocolError(1002, f"unknown opcode {opcode}")
                parts.append(payload)
                if sum(map(len, parts)) > MAX_MESSAGE:
                    raise ProtocolError(1009, "message too big")
                if not fin:
                    continue
                data, op, msg_op = b"".join(parts), msg_op, None
                if self.closed:
                    continue  # closing handshake under way: drop data
                if op == OP_TEXT:
                    try:
                        text = data.decode("utf-8")
                    except UnicodeDecodeError:
                        raise ProtocolError(1007, "invalid utf-8") from None
                    yield text
                else:
                    yield data
        except ProtocolError as err:
            logger.debug("closing %s: %s", self.peer, err.reason)
            await self.close(err.code, err.reason)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writer.close()


def _accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()


async def _handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Answer the HTTP upgrade request; anything that is not a WebSocket upgrade gets a 400."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return False
    request_line, *lines = head.split("\r\n")
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    key = headers.get("sec-websocket-key")
    if (
        not request_line.startswith("GET ")
        or headers.get("upgrade", "").lower() != "websocket"
        or "upgrade" not in headers.get("connection", "").lower()
        or headers.get("sec-websocket-version") != "13"
        or not key
    ):
        body = b"Expected a WebSocket upgrade request"
        writer.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        return False
    writer.write(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {_accept_key(key)}\r\n\r\n"
        ).encode()
    )
    return True


Handler = Callable[[WebSocket], Awaitable[None]]


async def serve(handler: Handler, host: str, port: int) -> asyncio.Server:
    """Listen on host:port and run `handler` for every WebSocket connection."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await _handshake(reader, writer):
                await handler(WebSocket(reader, writer))
        finally:
            writer.close()

    return await asyncio.start_server(on_connect, host, port)
