"""Measure the emulator through the official client: throughput and backlog memory.

    uv run python tools/pubsub-emulator/bench_emulator.py [--messages N] [--backlog N]

Prints publish and receive rates (messages/s, official client on both ends, client and
emulator sharing this machine's CPUs) and the emulator's RSS with a 100,000-message backlog.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent import futures

from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.types import BatchSettings, FlowControl

from flokraft_devstack.components import start_pubsub_emulator
from flokraft_devstack.processes import ManagedProcess


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def publish_all(
    publisher: pubsub_v1.PublisherClient, topic: str, count: int, payload: bytes
) -> float:
    started = time.perf_counter()
    pending = [publisher.publish(topic, payload) for _ in range(count)]
    futures.wait(pending)
    for future in pending:
        future.result()
    return time.perf_counter() - started


def measure_throughput(count: int, size: int) -> tuple[float, float]:
    publisher = pubsub_v1.PublisherClient(
        batch_settings=BatchSettings(max_messages=1000, max_bytes=5_000_000, max_latency=0.05)
    )
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name="projects/bench/topics/throughput").name
    subscription = "projects/bench/subscriptions/throughput"
    subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=60)
    publish_seconds = publish_all(publisher, topic, count, b"x" * size)

    received = 0
    lock = threading.Lock()
    done = threading.Event()

    def callback(message: pubsub_v1.subscriber.message.Message) -> None:
        nonlocal received
        message.ack()
        with lock:
            received += 1
            if received >= count:
                done.set()

    started = time.perf_counter()
    future = subscriber.subscribe(
        subscription, callback, flow_control=FlowControl(max_messages=5000)
    )
    if not done.wait(300):
        raise RuntimeError(f"received only {received} of {count}")
    receive_seconds = time.perf_counter() - started
    future.cancel()
    future.result(timeout=10)
    subscriber.close()
    return count / publish_seconds, count / receive_seconds


def measure_backlog(emulator: ManagedProcess, count: int, size: int) -> tuple[float, float]:
    publisher = pubsub_v1.PublisherClient(
        batch_settings=BatchSettings(max_messages=1000, max_bytes=5_000_000, max_latency=0.05)
    )
    subscriber = pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name="projects/bench/topics/backlog").name
    subscriber.create_subscription(name="projects/bench/subscriptions/backlog", topic=topic)
    before = rss_mib(emulator.process.pid)
    publish_all(publisher, topic, count, b"x" * size)
    time.sleep(0.5)
    return before, rss_mib(emulator.process.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="throughput sample size")
    parser.add_argument("--backlog", type=int, default=100_000, help="backlog size for RSS")
    parser.add_argument("--size", type=int, default=100, help="payload bytes per message")
    args = parser.parse_args()

    emulator = start_pubsub_emulator()
    os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
    try:
        publish_rate, receive_rate = measure_throughput(args.messages, args.size)
        print(f"cpus: {os.cpu_count()}, payload: {args.size} bytes, messages: {args.messages}")
        print(f"publish throughput: {publish_rate:,.0f} msgs/s")
        print(f"receive throughput (subscribe + ack): {receive_rate:,.0f} msgs/s")
        idle, loaded = measure_backlog(emulator, args.backlog, args.size)
        print(f"emulator RSS before backlog: {idle:.1f} MiB")
        print(f"emulator RSS with {args.backlog:,} messages in backlog: {loaded:.1f} MiB")
        print(f"  ~{(loaded - idle) * 1024 * 1024 / args.backlog:.0f} bytes per backlog message")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
