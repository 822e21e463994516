"""Hostile specs: alias bombs, deep nesting, huge files and lists, binary input (shared by two suites)."""

from __future__ import annotations

from pathlib import Path


def bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs": each level lists the previous one ``width`` times."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines)


def write_all(where: Path) -> dict[str, tuple[Path, str]]:
    """Writes every hostile spec under ``where``; name -> (path, what the error must say)."""
    base = "name: x\nmodel: {builder: m.py:build}\nloss: m.py:loss\n"
    texts: dict[str, tuple[bytes, str]] = {
        "bomb-top": ((bomb() + "\n" + base + "extra: *l8\n").encode(), "aliases expand"),
        "bomb-optimizer-args": (
            (
                bomb() + "\n" + base + "train: {max_steps: 1, optimizer: {name: SGD, args: {x: *l8}}}\n"
            ).encode(),
            "aliases expand",
        ),
        "bomb-bounds": (
            (bomb() + "\n" + base + "minimize: {constraints: {bounds: {v: *l8}}}\n").encode(),
            "aliases expand",
        ),
        "deep-nesting": (
            (base + "data: " + "[" * 10_000 + "]" * 10_000 + "\n").encode(),
            "nests deeper than",
        ),
        "deep-block-nesting": (
            (base + "data:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200))).encode(),
            "nests deeper than",
        ),
        "long-list": ((base + "extra: [" + ",".join(["0"] * 300_000) + "]\n").encode(), "more than 50000"),
        "million-list": ((base + "extra: [" + ",".join(["0"] * 1_000_000) + "]\n").encode(), "at most"),
        "self-alias": ((base + "extra: &a [1, *a]\n").encode(), "refers to the collection"),
        # One long string aliased many times: few values, but 270 MB of text once expanded.
        "text-bomb": (
            (base + 'a: &a "' + "x" * 900_000 + '"\nmore: [' + ", ".join(["*a"] * 300) + "]\n").encode(),
            "more than 8 MiB of text",
        ),
        "list-key": ((base + "? [1, 2]\n: x\n").encode(), "a key must be a name or a number; got a list"),
        "latin-1": ((base + "name: caf\xe9\n").encode("latin-1"), "not UTF-8"),
        "binary": (bytes(range(256)) * 4, "not"),
    }
    out: dict[str, tuple[Path, str]] = {}
    for name, (data, says) in texts.items():
        path = where / f"{name}.yaml"
        path.write_bytes(data)
        out[name] = (path, says)
    huge = where / "huge.yaml"  # 100 MB, sparse on disk: refused by its size, never read
    with huge.open("wb") as f:
        f.truncate(100 * 1024 * 1024)
    out["huge-100MB"] = (huge, "at most 1048576 bytes")
    return out
