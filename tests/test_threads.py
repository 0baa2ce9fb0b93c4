"""The default thread count: only the cores other jobs leave idle."""
import torch

from t2i import threads
from t2i.cli import main


def test_idle_cores():
    assert threads.idle_cores(2, 0) == 2
    assert threads.idle_cores(2, 1) == 1
    assert threads.idle_cores(2, 5) == 1  # never below one
    assert threads.idle_cores(16, 3) == 13
    assert threads.idle_cores(4, -1) == 4


def test_others_running_reads_the_kernel(tmp_path, monkeypatch):
    n = threads.others_running()
    assert n is None or n >= 0
    # the least of the reads: a process that passes through one read is not a busy core
    reads = iter(["0.50 0.40 0.30 3/90 123\n", "0.50 0.40 0.30 2/90 123\n", "0.50 0.40 0.30 4/90 123\n"])
    monkeypatch.setattr(threads.Path, "read_text", lambda self: next(reads))
    assert threads.others_running(gap_s=0) == 1


def test_user_settings_win(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_threads() is None
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "others_running", lambda: 1)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert threads.default_threads() == 3


def test_main_called_from_python_keeps_the_callers_threads(monkeypatch, capsys):
    monkeypatch.setattr(threads, "default_threads", lambda: 7)
    before = torch.get_num_threads()
    assert main(["train", "clip", "--data", "shapes", "--steps", "0"]) == 2  # any command; this one stops early
    assert torch.get_num_threads() == before


def test_the_console_command_takes_the_idle_cores(monkeypatch, capsys):
    import sys

    monkeypatch.setattr(threads, "default_threads", lambda: 3)
    monkeypatch.setattr(sys, "argv", ["t2i", "train", "clip", "--data", "shapes", "--steps", "0"])
    before = torch.get_num_threads()
    try:
        assert main() == 2
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
