"""scripts/bench's "python" workload: dict, list and str heavy work, about 1 s.

CPython allocates small objects from its own pools (obmalloc) but strings, lists and
dicts beyond 512 bytes, and the pools' arenas themselves, come from malloc; this script
makes plenty of both. It is deterministic: the same output under every allocator, which
tests/real also relies on.

    python3 python_workload.py [scale]     (scale multiplies the work; default 1.0)
"""
import sys


def words(count, seed):
    # A linear congruential generator: deterministic and independent of Python's random.
    state = seed
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        length = 3 + (state >> 33) % 12
        yield "".join(letters[(state >> (5 * i)) % 26] for i in range(length))


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    count = max(1, int(500_000 * scale))

    text = list(words(count, seed=42))
    counts = {}
    for word in text:
        counts[word] = counts.get(word, 0) + 1

    by_length = {}
    for word in counts:
        by_length.setdefault(len(word), []).append(word)
    for group in by_length.values():
        group.sort()

    # Build and take apart strings: joins, splits, formatting, slicing.
    lines = [" ".join(text[i:i + 16]) for i in range(0, len(text), 16)]
    rebuilt = [line.split(" ") for line in lines]
    upper = [line.upper()[::-1] for line in lines]
    records = [{"id": i, "first": r[0], "n": len(r), "tag": f"{i:08x}-{r[-1]}"} for i, r in enumerate(rebuilt)]
    index = {record["tag"]: record for record in records}

    checksum = 0
    for record in records:
        checksum = (checksum * 31 + record["n"] + len(index[record["tag"]]["first"])) % (1 << 61)
    for line in upper:
        checksum = (checksum * 131 + len(line) + ord(line[0])) % (1 << 61)
    print("words", len(text), "distinct", len(counts), "lengths", len(by_length))
    print("longest group", max(len(g) for g in by_length.values()))
    print("checksum", checksum)


if __name__ == "__main__":
    main()
