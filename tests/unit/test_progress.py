"""Transfer progress: drawn only when a person watches, sized only then."""

from __future__ import annotations

import io

from mlbuild.store import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_nothing_is_drawn_or_sized_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stderr", io.StringIO())
    asked = []
    with progress.transfer_progress("download x", lambda: asked.append(1) or 10**9) as callback:
        assert callback is None
    assert asked == []  # the size was never asked for


def test_a_terminal_sees_a_bar_for_a_large_transfer_and_none_for_a_small_one(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress.transfer_progress("download big.bin", lambda: 64 * 2**20) as callback:
        assert callback is not None
        for _ in range(4):
            callback(16 * 2**20)
    assert "download big.bin" in terminal.getvalue()  # drawn on stderr, not stdout
    with progress.transfer_progress("download small.txt", 1000) as callback:
        assert callback is None
