#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
#
# faultproxy: a seeded, fault-injecting TCP proxy for the Kafka protocol.
#
# It listens on 127.0.0.1 (port 0: the kernel picks one; the port is printed as
# "listening PORT" on stdout once the socket listens), opens one connection to
# --target for every client connection, and forwards Kafka frames both ways:
#
#   frame    = size:int32 (big-endian, bytes that follow) payload[size]
#   request  = api_key:int16 api_version:int16 correlation_id:int32 ...
#   response = correlation_id:int32 ...
#
# Requests are forwarded unchanged; their headers are remembered by
# correlation id (a bounded table) so that a response can be named by its API.
# For every response frame of an API in --apis (default: all), from the
# (--skip + 1)-th response of a connection on, the proxy decides, in this order:
#
#   drop   (--drop P)   the response is not forwarded. --drop-mode close: the
#                       connection is then closed (FIN), since a Kafka client
#                       cannot recover a missing response on a live connection
#                       except by timing the request out; hang: the connection
#                       stays open and later responses flow on, so the client's
#                       request timeout must fire; both: a coin flip per drop.
#   reset  (--reset P)  a random prefix of the response (possibly none) is
#                       forwarded, then the client connection is reset (RST,
#                       through SO_LINGER 0) and the broker connection closed.
#   delay  (--delay-prob P, --delay-ms LO,HI)  the response is held back for a
#                       uniform random time; responses stay in order on the
#                       connection, so the ones behind it wait too, as they
#                       would behind a slow broker.
#
# Reproducible: connection k (0, 1, 2, ... in order of accept) draws from its own
# generator seeded with (--seed, k), a fixed number of draws per eligible
# response, so the same seed gives the same decision for the n-th eligible
# response of the k-th connection. What a client sends, and when, is up to the
# client; the proxy's choices are not.
#
# Bounds: a frame larger than --max-frame-bytes closes the connection; at most
# --queue-frames responses wait to be sent per connection (the broker side stops
# being read while the queue is full); at most PENDING_MAX request headers are
# remembered per connection (requests with acks=0 are never answered).
#
# --log FILE gets one line per fault injected (and one per switch of SIGUSR1):
#   <unix ms> conn=<k> fault=<drop-close|drop-hang|reset|delay> api=<key> ...
# SIGUSR1 switches the faults off and on again; SIGTERM and SIGINT stop the
# proxy, which then prints a one-line summary on stderr.
import argparse
import asyncio
import collections
import random
import signal
import socket
import struct
import sys
import time

PENDING_MAX = 4096  # remembered request headers per connection
CONNECT_TIMEOUT_S = 5.0
HEADER_REQUEST_BYTES = 8  # api_key, api_version, correlation_id
HEADER_RESPONSE_BYTES = 4  # correlation_id

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics", 22: "InitProducerId",
    23: "OffsetForLeaderEpoch", 32: "DescribeConfigs",
}


def probability(text):
    p = float(text)
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError("a probability is in [0, 1]: %r" % text)
    return p


def ms_range(text):
    try:
        lo, hi = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("want LO,HI in ms: %r" % text)
    if not 0 <= lo <= hi:
        raise argparse.ArgumentTypeError("want 0 <= LO <= HI: %r" % text)
    return lo, hi


def host_port(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("want HOST:PORT: %r" % text)
    return host, int(port)


def api_list(text):
    if text == "all":
        return None
    try:
        return frozenset(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("want 'all' or API keys, e.g. 0,3: %r" % text)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Seeded fault-injecting proxy for Kafka frames.")
    ap.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 (0: any)")
    ap.add_argument("--target", type=host_port, required=True, help="broker HOST:PORT")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--drop", type=probability, default=0.0, help="P(drop a response)")
    ap.add_argument("--drop-mode", choices=("close", "hang", "both"), default="close")
    ap.add_argument("--reset", type=probability, default=0.0, help="P(reset the connection)")
    ap.add_argument("--delay-prob", type=probability, default=0.0, help="P(delay a response)")
    ap.add_argument("--delay-ms", type=ms_range, default=(0, 0), help="LO,HI delay in ms")
    ap.add_argument("--apis", type=api_list, default=None,
                    help="API keys whose responses may be faulted: 'all' or e.g. 0,3")
    ap.add_argument("--skip", type=int, default=0,
                    help="responses per connection forwarded untouched first")
    ap.add_argument("--max-frame-bytes", type=int, default=128 << 20)
    ap.add_argument("--queue-frames", type=int, default=256)
    ap.add_argument("--log", help="file: one line per fault injected")
    args = ap.parse_args(argv)
    if args.drop + args.reset > 1.0:
        ap.error("--drop + --reset must not exceed 1")
    if args.skip < 0 or args.queue_frames < 1 or args.max_frame_bytes < HEADER_REQUEST_BYTES:
        ap.error("--skip >= 0, --queue-frames >= 1, --max-frame-bytes >= 8")
    return args


class Proxy:
    def __init__(self, args):
        self.args = args
        self.enabled = True
        self.connections = 0
        self.responses = 0
        self.counts = collections.Counter()
        self.log = open(args.log, "a", buffering=1) if args.log else None

    def note(self, conn_no, what, **fields):
        self.counts[what] += 1
        if self.log is not None:
            extra = "".join(" %s=%s" % kv for kv in fields.items())
            self.log.write("%d conn=%d fault=%s%s\n" % (time.time() * 1000, conn_no, what, extra))

    def toggle(self):
        self.enabled = not self.enabled
        if self.log is not None:
            self.log.write("%d faults=%s\n" % (time.time() * 1000, "on" if self.enabled else "off"))

    def summary(self):
        return ("faultproxy: connections=%d responses=%d drop-close=%d drop-hang=%d reset=%d "
                "delay=%d" % (self.connections, self.responses, self.counts["drop-close"],
                              self.counts["drop-hang"], self.counts["reset"], self.counts["delay"]))

    # Every eligible response costs the same five draws, whatever is decided,
    # so that one response's outcome never shifts the next one's. Returns
    # (action, delay in seconds, fraction of the frame sent before a reset).
    def decide(self, rng):
        a = self.args
        r_fault, r_mode, r_delay, r_delay_ms, r_cut = (rng.random() for _ in range(5))
        if not self.enabled:
            return "forward", 0.0, 0.0
        delay_s = 0.0
        if r_delay < a.delay_prob:
            lo, hi = a.delay_ms
            delay_s = (lo + (hi - lo) * r_delay_ms) / 1000.0
        if r_fault < a.drop:
            hang = a.drop_mode == "hang" or (a.drop_mode == "both" and r_mode < 0.5)
            return ("drop-hang" if hang else "drop-close"), delay_s, r_cut
        if r_fault < a.drop + a.reset:
            return "reset", delay_s, r_cut
        return ("delay" if delay_s > 0 else "forward"), delay_s, r_cut

    async def serve(self):
        server = await asyncio.start_server(self.client, "127.0.0.1", self.args.listen_port,
                                            reuse_address=True)
        port = server.sockets[0].getsockname()[1]
        print("listening %d" % port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, self.toggle)
        async with server:
            await stop.wait()
        print(self.summary(), file=sys.stderr, flush=True)

    async def client(self, creader, cwriter):
        conn_no = self.connections
        self.connections += 1
        rng = random.Random("%d/%d" % (self.args.seed, conn_no))
        host, port = self.args.target
        try:
            ureader, uwriter = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                      CONNECT_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            # The broker is down: the client sees what it would see without us.
            reset(cwriter)
            return
        conn = Connection(self, conn_no, rng, creader, cwriter, ureader, uwriter)
        await conn.run()


def reset(writer):
    """Closes with RST: SO_LINGER on, timeout 0, then close."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class Connection:
    """One client connection and its broker connection: three tasks."""

    def __init__(self, proxy, conn_no, rng, creader, cwriter, ureader, uwriter):
        self.proxy = proxy
        self.conn_no = conn_no
        self.rng = rng
        self.creader, self.cwriter = creader, cwriter
        self.ureader, self.uwriter = ureader, uwriter
        self.pending = collections.OrderedDict()  # correlation id -> (api key, version)
        self.queue = asyncio.Queue(maxsize=proxy.args.queue_frames)
        self.responses = 0
        # drain() returns once the kernel has the bytes, not when under 64 KiB.
        cwriter.transport.set_write_buffer_limits(high=0)

    async def run(self):
        requests = asyncio.create_task(self.requests())
        reader = asyncio.create_task(self.read_responses())
        sender = asyncio.create_task(self.send_responses())
        tasks = (requests, reader, sender)
        try:
            # The end of the broker's stream reaches the sender through the
            # queue, after the responses still queued: only the client's end
            # and the sender's decide when the connection is over.
            await asyncio.wait((requests, sender), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.cwriter.close()  # a no-op after a reset: the transport is gone
            self.uwriter.close()

    async def read_frame(self, reader, header_bytes):
        """A whole frame (size prefix included), or None at end of stream or a bad size."""
        try:
            prefix = await reader.readexactly(4)
            (size,) = struct.unpack(">i", prefix)
            if size < header_bytes or size > self.proxy.args.max_frame_bytes:
                print("faultproxy: conn=%d frame size %d refused" % (self.conn_no, size),
                      file=sys.stderr)
                return None
            return prefix + await reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return None

    async def requests(self):
        while True:
            frame = await self.read_frame(self.creader, HEADER_REQUEST_BYTES)
            if frame is None:
                return
            api, version, corr = struct.unpack_from(">hhi", frame, 4)
            self.pending[corr] = (api, version)
            if len(self.pending) > PENDING_MAX:
                self.pending.popitem(last=False)
            try:
                self.uwriter.write(frame)
                await self.uwriter.drain()
            except (ConnectionError, OSError):
                return

    async def read_responses(self):
        args = self.proxy.args
        while True:
            frame = await self.read_frame(self.ureader, HEADER_RESPONSE_BYTES)
            if frame is None:
                await self.queue.put(None)  # forward what is queued, then close
                return
            (corr,) = struct.unpack_from(">i", frame, 4)
            api, version = self.pending.pop(corr, (-1, -1))
            self.responses += 1
            self.proxy.responses += 1
            action, delay_s, cut = "forward", 0.0, 0.0
            if self.responses > args.skip and (args.apis is None or api in args.apis):
                action, delay_s, cut = self.proxy.decide(self.rng)
            due = time.monotonic() + delay_s
            await self.queue.put((frame, action, due, delay_s, cut, api, version, corr))

    async def send_responses(self):
        while True:
            item = await self.queue.get()
            if item is None:
                return
            frame, action, due, delay_s, cut, api, version, corr = item
            wait_s = due - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            name = "%d(%s)" % (api, API_NAMES.get(api, "?"))
            if action == "delay":
                self.proxy.note(self.conn_no, "delay", api=name, v=version, corr=corr,
                                ms=int(round(delay_s * 1000)))
            elif action == "drop-hang":
                self.proxy.note(self.conn_no, action, api=name, v=version, corr=corr,
                                bytes=len(frame))
                continue
            elif action == "drop-close":
                self.proxy.note(self.conn_no, action, api=name, v=version, corr=corr,
                                bytes=len(frame))
                return
            elif action == "reset":
                sent = int(cut * len(frame))
                self.proxy.note(self.conn_no, action, api=name, v=version, corr=corr,
                                sent=sent, bytes=len(frame))
                try:
                    if sent > 0:
                        self.cwriter.write(frame[:sent])
                        await self.cwriter.drain()
                except (ConnectionError, OSError):
                    pass
                reset(self.cwriter)
                return
            try:
                self.cwriter.write(frame)
                await self.cwriter.drain()
            except (ConnectionError, OSError):
                return


def main():
    args = parse_args(sys.argv[1:])
    try:
        asyncio.run(Proxy(args).serve())
    except OSError as e:
        print("faultproxy: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
