#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""kafka-python (an independent implementation of the protocol) against a
real sluiced: produce keyed records with headers at acks=all and read them
back with kafka-python; then read records kcat produced, and produce records
for kcat to read (the shell wrapper checks that side). Usage: BROKER TOPIC_IN"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

N = 2000


def consume(broker, topic, partition, count):
    c = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                      consumer_timeout_ms=5000)
    tp = TopicPartition(topic, partition)
    c.assign([tp])
    c.seek_to_beginning(tp)
    got = []
    for m in c:
        got.append(m)
        if len(got) == count:
            break
    c.close()
    return got


def main():
    broker, from_kcat = sys.argv[1], sys.argv[2]
    p = KafkaProducer(bootstrap_servers=broker, acks='all', linger_ms=5, retries=0)
    futures = [p.send('kp', key=b'k%d' % i, value=b'v%d' % i, partition=0,
                      headers=[('n', b'%d' % i)]) for i in range(N)]
    p.flush()
    offsets = [f.get(timeout=10).offset for f in futures]
    assert offsets == list(range(N)), "acknowledged offsets are not 0..N-1"
    got = consume(broker, 'kp', 0, N)
    assert len(got) == N, "read %d of %d" % (len(got), N)
    for i, m in enumerate(got):
        assert (m.offset, m.key, m.value) == (i, b'k%d' % i, b'v%d' % i), m
        assert m.headers == [('n', b'%d' % i)], m.headers
    # Records kcat produced, read by kafka-python.
    kc = consume(broker, from_kcat, 0, 100)
    assert [m.value for m in kc] == [b'kcat-%d' % i for i in range(100)], kc[:3]
    # Records for kcat to read.
    for i in range(100):
        p.send('to-kcat', value=b'kp-%d' % i, partition=0)
    p.flush()
    p.close()
    print("kafka-python: %d records round trip, 100 each way with kcat: ok" % N)


if __name__ == "__main__":
    main()
