"""Print the distinct values of one key column of an expect file, comma-joined, for a sweep.

``forget`` values are written as the spec's description (``class_fraction(classes=[2, 5],...)``);
the sweep needs the forget-set name only, so anything from the first ``(`` on is dropped.

    python scripts/expect_keys.py conf/table/fashion.expect.csv method   # -> del,finetune,...
"""

import sys

from unlearnbench.expect import read_expect


def keys(path: str, column: str) -> str:
    return ",".join(sorted({value.split("(", 1)[0] for value in read_expect(path)[column]}))


if __name__ == "__main__":
    print(keys(sys.argv[1], sys.argv[2]))
