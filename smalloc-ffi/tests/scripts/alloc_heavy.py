"""Allocation-heavy Python whose output must not depend on the allocator: dicts, lists,
strings, big integers, JSON and garbage-collected cycles. Run with PYTHONHASHSEED fixed."""
import gc
import hashlib
import json
import random
import sys

rng = random.Random(42)

# Dicts with string keys, growing, then thinned out.
d = {}
for i in range(80_000):
    d[f"key-{i}-{rng.random():.6f}"] = [i, str(i) * (i % 7), {"n": i}]
for k in list(d)[::3]:
    del d[k]
h = hashlib.sha256()
for k in sorted(d)[:20_000]:
    h.update(k.encode())
print("dict", len(d), h.hexdigest())

# Lists of tuples, sorted.
rows = [(rng.randrange(10**6), rng.random(), "x" * rng.randrange(50)) for _ in range(60_000)]
rows.sort()
print("rows", rows[0][0], rows[-1][0], sum(len(r[2]) for r in rows))

# Strings: built, split, counted, joined.
text = " ".join(f"word{rng.randrange(5000)}" for _ in range(100_000))
freq = {}
for w in text.split():
    freq[w] = freq.get(w, 0) + 1
top = sorted(freq.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
print("words", len(freq), top)
print("joined", len("-".join(sorted(freq))))

# Big integers (printed whole, past the default conversion limit).
sys.set_int_max_str_digits(100_000)
f = 1
for i in range(2, 3000):
    f *= i
digits = str(f)
print("factorial", len(digits), sum(map(int, digits)))
print("pow", pow(3, 100_000, 10**50))
a, b = 0, 1
for _ in range(20_000):
    a, b = b, a + b
print("fib", len(str(a)))

# JSON round trip of nested structures.
doc = {"items": [{"id": i, "tags": [f"t{j}" for j in range(i % 10)], "v": i * 1.5}
                 for i in range(15_000)]}
s = json.dumps(doc, sort_keys=True)
print("json", len(s), json.loads(s) == doc, hashlib.sha256(s.encode()).hexdigest()[:16])


# Short-lived objects in reference cycles, left to the cycle collector.
class Node:
    __slots__ = ("next", "data")

    def __init__(self, data):
        self.data, self.next = data, None


kept = 0
for round_ in range(10):
    nodes = [Node(bytearray(rng.randrange(1, 2000))) for _ in range(5000)]
    for x, y in zip(nodes, nodes[1:] + nodes[:1]):
        x.next = y
    kept += sum(len(n.data) for n in nodes)
    del nodes
    gc.collect()
print("cycles", kept)
