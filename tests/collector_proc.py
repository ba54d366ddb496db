"""A real collector process for the crash tests: appends simulated events, prints each acknowledgement.

Usage: python tests/collector_proc.py ROOT SOURCE SEED START_NS N [batch|table]
Prints "START <durable events>" once the write path is up, then "ACK <events>" after every
group commit — only what it printed as acknowledged must survive kill -9.
"""

import sys

from mdcsql.archive import Archive
from mdcsql.sources.sim import SimulatedMarket

SYMBOLS = ["AAPL", "MSFT", "BRK/B"]


def main() -> None:
    root, source, seed, start_ns, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    archive = Archive.open(root)
    ingestor = archive.ingestor()
    print(f"START {ingestor.durable.events}", flush=True)
    ingestor.on_ack(lambda ack: print(f"ACK {ack.events}", flush=True))
    # One simulated event every 20 s of event time: with Daily partitions a day boundary is crossed
    # every ~4,300 events, so files are sealed while the process may be killed too.
    market = SimulatedMarket(SYMBOLS, seed=seed, start_ns=start_ns, source=source, events_per_second=0.05)
    done = 0
    while done < n:
        ingestor.append_many(market.take(200), normalized=True)
        done += 200
    archive.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
